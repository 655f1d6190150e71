"""Crash and resume: a run resumed from a mid-epoch checkpoint ends with exactly the weights of an
uninterrupted run; truncated or corrupt checkpoints are reported clearly and skipped in favour of the
newest good one; a real ``kill -9`` of tools/train.py followed by ``--resume`` (slow test)."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_utils import (ROOT, assert_state_equal, load_state_dict, make_tiny_dataset, model_state,  # noqa: E402
                          run_tool, tool_env, train_in_process, write_tiny_config)


def _truncate(src, dst, keep=0.5):
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])


def test_corrupt_checkpoints_clear_error_and_newest_good_one_is_used(tmp_path):
    from pc3d.engine.resume import CheckpointError, check_checkpoint, find_resume_checkpoint

    good_old, good_new = tmp_path / "iter_2.pth", tmp_path / "iter_4.pth"
    for i, path in enumerate((good_old, good_new)):
        torch.save({"state_dict": {"w": torch.full((3,), float(i))}, "meta": {"iter": 2 * (i + 1)}}, path)
        os.utime(path, (1000 + i, 1000 + i))
    assert check_checkpoint(str(good_new)) == {"iter": 4}
    truncated = tmp_path / "iter_6.pth"
    _truncate(good_new, truncated)
    garbage = tmp_path / "iter_8.pth"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match=r"iter_6\.pth \(\d+ bytes\) cannot be loaded: it is truncated or corrupt"):
        check_checkpoint(str(truncated))
    with pytest.raises(CheckpointError, match="iter_8.pth.*truncated or corrupt"):
        check_checkpoint(str(garbage))
    with pytest.raises(CheckpointError, match="does not exist"):
        check_checkpoint(str(tmp_path / "nope.pth"))
    not_ckpt = tmp_path / "weights.pth"
    torch.save({"w": torch.zeros(1)}, not_ckpt)
    with pytest.raises(CheckpointError, match="not an mmengine training checkpoint"):
        check_checkpoint(str(not_ckpt))
    os.utime(not_ckpt, (900, 900))
    # last_checkpoint names the truncated file (a kill while writing it): skipped with a warning, then
    # the newest loadable file wins over the older one.
    (tmp_path / "last_checkpoint").write_text(str(truncated))
    with pytest.warns(UserWarning, match="iter_6.pth.*truncated or corrupt"):
        assert find_resume_checkpoint(str(tmp_path)) == str(good_new)
    (tmp_path / "last_checkpoint").write_text("")  # emptied by a crash: falls back to the newest good file
    with pytest.warns(UserWarning):
        assert find_resume_checkpoint(str(tmp_path)) == str(good_new)
    for p in (good_old, good_new):
        p.unlink()
    with pytest.warns(UserWarning):
        assert find_resume_checkpoint(str(tmp_path)) is None


def test_resume_mid_epoch_equals_uninterrupted_run(tmp_path, restore_torch_flags):
    """Uninterrupted: 2 epochs x 3 iterations, a checkpoint every 2 iterations. Resumed: a fresh work dir
    holding only the checkpoint of iteration 2 (in the middle of epoch 1) plus a newer truncated file
    that last_checkpoint points to; --resume must pick iter_2 and finish bit-identical."""
    torch.set_num_threads(1)
    data = make_tiny_dataset(tmp_path / "data", n_train=6, n_val=1)
    cfg = write_tiny_config(tmp_path / "cfg.py", data, max_epochs=2, ckpt_by_epoch=False, ckpt_interval=2)
    full = train_in_process([cfg, "--work-dir", tmp_path / "full", "--cfg-options", "experiment_name=full"])
    expected = model_state(full)
    assert_state_equal(load_state_dict(tmp_path / "full" / "iter_6.pth"), expected)
    # The checkpoint is loadable with weights_only=True (RNG state as tensors, no scheduler functions).
    ckpt = torch.load(tmp_path / "full" / "iter_2.pth", map_location="cpu", weights_only=True)
    assert ckpt["meta"]["iter"] == 2 and ckpt["meta"]["epoch"] == 0 and "rng_state" in ckpt["meta"]
    assert ckpt["param_schedulers"] and "optimizer" in ckpt

    work = tmp_path / "crashed"
    work.mkdir()
    shutil.copy(tmp_path / "full" / "iter_2.pth", work / "iter_2.pth")
    _truncate(tmp_path / "full" / "iter_4.pth", work / "iter_4.pth")
    (work / "last_checkpoint").write_text(str(work / "iter_4.pth"))
    with pytest.warns(UserWarning, match="iter_4.pth.*truncated or corrupt"):
        resumed = train_in_process([cfg, "--work-dir", work, "--resume", "--cfg-options", "experiment_name=resumed"])
    assert resumed.iter == 6 and resumed.epoch == 2
    assert_state_equal(model_state(resumed), expected)
    # Optimizer state (AdamW moments, step) and learning rate also match.
    a = torch.load(tmp_path / "full" / "iter_6.pth", map_location="cpu", weights_only=True)
    b = torch.load(work / "iter_6.pth", map_location="cpu", weights_only=True)
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for key in sa:
            assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key])), key
    assert a["optimizer"]["param_groups"][0]["lr"] == b["optimizer"]["param_groups"][0]["lr"]

    # Resuming from an explicitly named corrupt file is a clear error, not a traceback from deep inside.
    from pc3d.engine.resume import CheckpointError

    _truncate(work / "iter_6.pth", work / "bad.pth")
    with pytest.raises(CheckpointError, match="bad.pth.*truncated or corrupt"):
        train_in_process([cfg, "--work-dir", work, "--resume", work / "bad.pth"])


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    """tools/train.py in a subprocess, checkpoint every iteration; SIGKILL once a mid-epoch checkpoint
    exists; ``--resume`` continues and the final weights equal an uninterrupted run's bit for bit."""
    data = make_tiny_dataset(tmp_path / "data", n_train=12, n_val=1)
    cfg = write_tiny_config(tmp_path / "cfg.py", data, max_epochs=2, ckpt_by_epoch=False, ckpt_interval=1)
    run_tool([ROOT / "tools" / "train.py", cfg, "--work-dir", tmp_path / "full"])
    expected = load_state_dict(tmp_path / "full" / "iter_12.pth")

    work = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "train.py"), str(cfg), "--work-dir", str(work)],
                            cwd=ROOT, env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (work / "iter_2.pth").exists():  # 6 iterations per epoch: iteration 2 is mid-epoch 1
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = sorted(p.name for p in work.glob("iter_*.pth"))
    assert "iter_12.pth" not in saved, f"the run finished before the kill: {saved}"
    from pc3d.engine.resume import check_checkpoint

    for path in work.glob("*.pth"):  # atomic saves: a kill leaves at most a hidden .tmp, never a bad .pth
        check_checkpoint(str(path))
    out = run_tool([ROOT / "tools" / "train.py", cfg, "--work-dir", work, "--resume"])
    assert "resuming epoch" in out.stdout + out.stderr or "resumed" in (out.stdout + out.stderr).lower()
    assert_state_equal(load_state_dict(work / "iter_12.pth"), expected)
