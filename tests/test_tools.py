"""Training tools: atomic checkpoints, resume under torch's weights_only loading, and the
train.py / test.py command lines on a tiny config and a few simulated frames."""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_utils import simulate_with_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _toy_runner(runner_cls, work_dir):
    """A runner over a one-parameter model and a 2-item dataset (no pc3d data needed)."""
    from mmengine.model import BaseModel

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, inputs, data_samples=None, mode="tensor"):
            x = torch.stack(inputs) if isinstance(inputs, list) else inputs
            return {"loss": (self.w * x).sum() ** 2} if mode == "loss" else [x]

    dataset = [dict(inputs=torch.ones(3))] * 2
    return runner_cls(model=Toy(), work_dir=str(work_dir), experiment_name=f"toy_{runner_cls.__module__}",
                      train_dataloader=dict(dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=False),
                                            batch_size=1, collate_fn=dict(type="pseudo_collate")),
                      train_cfg=dict(by_epoch=True, max_epochs=1),
                      optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
                      # One-cycle state pickles its annealing function by name: resume must allow that.
                      param_scheduler=dict(type="OneCycleLR", eta_max=0.01, total_steps=4, by_epoch=False),
                      default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)))


def _crash_midway(self, obj, filepath):
    """Stands in for the file backend's write: half the bytes reach the disk, then the process 'dies'."""
    with open(filepath, "wb") as f:
        f.write(obj[: len(obj) // 2])
    raise KeyboardInterrupt("killed while saving")


@pytest.mark.parametrize("atomic", [True, False])
def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch, atomic):
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.runner import Runner as PlainRunner

    from pc3d.engine import Runner

    runner = _toy_runner(Runner if atomic else PlainRunner, tmp_path)
    runner.train()
    ckpt = tmp_path / "epoch_1.pth"
    before = ckpt.read_bytes()
    saved = torch.load(ckpt, map_location="cpu")
    monkeypatch.setattr(LocalBackend, "put", _crash_midway)
    with pytest.raises(KeyboardInterrupt):
        runner.save_checkpoint(str(tmp_path), "epoch_1.pth")
    if atomic:
        assert ckpt.read_bytes() == before  # the earlier checkpoint is untouched and still loads
        torch.testing.assert_close(torch.load(ckpt, map_location="cpu")["state_dict"], saved["state_dict"])
        assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temp file left behind
    else:
        # mmengine's own Runner writes in place: the crash leaves a truncated file (what pc3d fixes).
        assert len(ckpt.read_bytes()) < len(before)


def test_resume_loads_mmengine_checkpoint_with_weights_only(tmp_path):
    """mmengine checkpoints carry MessageHub HistoryBuffers and scheduler state; pc3d.engine allow-lists
    exactly those for torch's default ``weights_only`` load."""
    from pc3d.engine import Runner

    runner = _toy_runner(Runner, tmp_path)
    runner.train()
    ckpt = torch.load(tmp_path / "epoch_1.pth", map_location="cpu", weights_only=True)
    assert ckpt["meta"]["epoch"] == 1 and "message_hub" in ckpt and ckpt["param_schedulers"]
    resumed = _toy_runner(Runner, tmp_path)
    resumed._train_loop = resumed.build_train_loop(dict(by_epoch=True, max_epochs=2))
    resumed.resume(str(tmp_path / "epoch_1.pth"))
    assert resumed.epoch == 1
    torch.testing.assert_close(resumed.model.w.detach(), runner.model.w.detach())
    assert resumed.param_schedulers[0].last_step == runner.param_schedulers[0].last_step


def test_checkpoint_getattr_refuses_other_attributes():
    import pickle

    from pc3d.engine.checkpoint import _checkpoint_getattr

    with pytest.raises(pickle.UnpicklingError, match="does not allow"):
        _checkpoint_getattr(os, "system")


# ---------------------------------------------------------------- command lines
@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return simulate_with_cli(tmp_path_factory, 2, 2, seed=3)


def _tiny_config(path: Path, data_root: Path) -> Path:
    """The default config, shrunk: +-20.48 m, narrow layers, 1 epoch of 1-frame batches, no workers."""
    r = [-20.48, -20.48, -2.0, 20.48, 20.48, 4.0]
    path.write_text(f"""
_base_ = [{str(ROOT / 'configs' / 'centerpoint' / 'centerpoint_pillar_synthetic.py')!r}]
point_cloud_range = {r}
model = dict(
    voxelizer=dict(pc_range={r}),
    voxel_encoder=dict(feat_channels=(16,), pc_range={r}),
    bev=dict(in_channels=16),
    backbone2d=dict(in_channels=16, out_channels=(16, 16, 16), layer_nums=(1, 1, 1)),
    neck=dict(in_channels=(16, 16, 16), out_channels=(8, 8, 8)),
    head=dict(in_channels=24, pc_range={r}, shared_channels=8, head_channels=8))
_pipe = [dict(type='RangeFilter', point_cloud_range={r})]
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(data_root)!r}, pipeline=_pipe))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={str(data_root)!r}, pipeline=_pipe))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
""")
    return path


def _run(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_train_resume_and_test_cli(tmp_path, synthetic_root):
    cfg = _tiny_config(tmp_path / "tiny.py", synthetic_root)
    work = tmp_path / "work"
    out = _run([str(ROOT / "tools" / "train.py"), str(cfg), "--work-dir", str(work)], tmp_path)
    assert (work / "epoch_1.pth").exists() and "Vehicle/L1_AP" in out
    assert list(work.glob("*/vis_data/events.out.tfevents.*")), "no TensorBoard event file"
    assert not list(work.glob(".*.tmp"))
    # --resume (no path) continues from the work dir's last checkpoint under torch's weights_only load.
    out = _run([str(ROOT / "tools" / "train.py"), str(cfg), "--work-dir", str(work), "--resume",
                "--cfg-options", "train_cfg.max_epochs=2"], tmp_path)
    assert "resumed epoch: 1" in out and (work / "epoch_2.pth").exists()
    show = tmp_path / "show"
    out = _run([str(ROOT / "tools" / "test.py"), str(cfg), str(work / "epoch_2.pth"), "--work-dir", str(work),
                "--show-dir", str(show), "--show-score-thr", "0.0"], tmp_path)
    assert "Vehicle" in out and "mAP_L1" in out
    pngs = sorted(p.name for p in show.glob("*.png"))
    assert pngs == ["val_000000.png", "val_000001.png"]
    assert all((show / p).stat().st_size > 10_000 for p in pngs)
    # --fuse-conv-bn folds the BNs after loading the checkpoint; the metrics line is unchanged.
    fused = _run([str(ROOT / "tools" / "test.py"), str(cfg), str(work / "epoch_2.pth"), "--work-dir", str(work),
                  "--fuse-conv-bn"], tmp_path)
    folded = re.search(r"FuseConvBNHook: (\d+) BatchNorm layers folded", fused)
    assert folded and int(folded.group(1)) > 0, fused[-2000:]

    def metrics_line(text):
        return [line.split("Epoch(test)")[1] for line in text.splitlines() if "Epoch(test)" in line and "mAP_L1" in line]

    assert metrics_line(fused) and metrics_line(fused)[-1].split("data_time")[0] == metrics_line(out)[-1].split("data_time")[0]


# ---------------------------------------------------------------- BEV pictures
def test_box_corners_follow_heading():
    from pc3d.visualization import box_corners_bev

    # A 4 x 2 box at (10, 5) turned by +90 degrees: its length now runs along y.
    corners = box_corners_bev(torch.tensor([[10.0, 5.0, 0.0, 4.0, 2.0, 1.5, math.pi / 2]]))[0]
    expect = [[9.0, 7.0], [9.0, 3.0], [11.0, 3.0], [11.0, 7.0]]  # front-left first, counter-clockwise
    np.testing.assert_allclose(corners, expect, atol=1e-5)


def test_draw_bev_colours_gt_green_and_predictions_red(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg

    from pc3d.visualization import draw_bev

    points = torch.rand(500, 5) * 20 - 10
    gt = torch.tensor([[-5.0, -5.0, 0.0, 4.0, 2.0, 1.5, 0.0]])
    pred = torch.tensor([[5.0, 5.0, 0.0, 4.0, 2.0, 1.5, 0.5], [0.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0]])
    path = draw_bev(tmp_path / "a" / "bev.png", points, gt, pred, torch.tensor([0.9, 0.1]),
                    pc_range=[-10, -10, -2, 10, 10, 4], score_threshold=0.3)
    img = mpimg.imread(path)[..., :3]
    green = (img[..., 1] > 0.6) & (img[..., 0] < 0.5) & (img[..., 2] < 0.5)
    red = (img[..., 0] > 0.8) & (img[..., 1] < 0.3) & (img[..., 2] < 0.3)
    assert green.sum() > 20 and red.sum() > 20
    # Only the 0.9 prediction is drawn: the red pixels lie in the upper-right quadrant (+x, +y).
    rows, cols = (red.nonzero()[0], red.nonzero()[1])
    assert cols.mean() > img.shape[1] / 2 and rows.mean() < img.shape[0] / 2
    with pytest.raises(ValueError, match="pred_scores has 1 entries for 2"):
        draw_bev(tmp_path / "b.png", points, gt, pred, torch.tensor([0.9]))
