"""`make demo` (tools/demo.py) console output: one progress line per phase, the metrics table and the
paths, while mmengine's dumps, per-iteration lines and warnings go to the log files only; the pieces
behind it (the runner's console_log_level, labelled progress bars, deferred BEV pictures, warnings
routed to the run's log)."""
import importlib.util
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_tools import _tiny_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHASES = ["simulate", "evaluate untrained", "train", "evaluate trained", "pictures"]


def _demo_module():
    spec = importlib.util.spec_from_file_location("pc3d_demo_tool", ROOT / "tools" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _logs(work: Path):
    """The mmengine log files of the demo's two runs, by stage."""
    return {stage: sorted((work / stage).glob("*/*.log")) for stage in ("untrained", "train")}


def test_demo_console_shows_phases_table_and_paths_and_the_log_keeps_the_rest(tmp_path):
    pytest.importorskip("open3d", reason="the LiDAR simulator needs open3d")
    pytest.importorskip("matplotlib", reason="the demo draws its BEV pictures with matplotlib")
    data, work = tmp_path / "synthetic", tmp_path / "work"  # no dataset yet: the demo simulates 2 + 1 frames
    cfg = _tiny_config(tmp_path / "tiny.py", data)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "demo.py"), "--config", str(cfg), "--data-root",
                           str(data), "--work-dir", str(work), "--epochs", "1", "--train-frames", "2",
                           "--val-frames", "1", "--threads", "1", "--num-vis", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-4000:]

    # One bar per phase, each run to its end; no other bar (mmengine's val pass, unlabelled bars).
    screen = console.replace("\r", "\n")
    for i, name in enumerate(PHASES):
        label = f"[demo {i + 1}/{len(PHASES)}] {name}"
        assert f"{label}: 100%" in screen, (label, screen[-3000:])
    bar_lines = [line for line in screen.splitlines() if "%|" in line]
    assert all(line.startswith("[demo ") for line in bar_lines), bar_lines
    # The table, both models, and where everything is.
    assert "L1 AP" in proc.stdout and "trained     mean" in proc.stdout and "untrained   Vehicle" in proc.stdout
    logs = _logs(work)
    assert len(logs["untrained"]) == 1 and len(logs["train"]) == 1, logs
    for path in [work / "bev", work / "demo_metrics.json", *logs["untrained"], *logs["train"], work / "simulate.log"]:
        assert str(path.resolve()) in proc.stdout, (path, proc.stdout)
    assert [p.name for p in (work / "bev").glob("*.png")] == ["val_000000.png"]
    assert "simulated 3 frames" in (work / "simulate.log").read_text()

    # Not on the console ...
    for noise in ("Hooks will be executed", "System environment", "Epoch(train)", "Epoch(test)", "HardDiskBackend",
                  "Warning", "mmengine - INFO", "synthetic train"):
        assert noise not in console, (noise, console[-3000:])
    # ... but in the log files.
    train_log = logs["train"][0].read_text()
    for kept in ("System environment", "Hooks will be executed", "Epoch(train)", "Epoch(test)", "HardDiskBackend"):
        assert kept in train_log, kept
    assert "Epoch(val)" not in train_log  # trained model evaluated once, by the test pass
    assert "Hooks will be executed" in logs["untrained"][0].read_text()


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))


def _runner(tmp_path, name, **cfg):
    from pc3d.engine import Runner

    return Runner(model=_Toy(), work_dir=str(tmp_path / name), experiment_name=f"{name}_{tmp_path.name}", cfg=cfg)


def test_console_log_level_raises_only_the_console(tmp_path, capsys):
    runner = _runner(tmp_path, "quiet", console_log_level="WARNING")
    runner.logger.info("an info line")
    runner.logger.warning('"HardDiskBackend" is the alias of "LocalBackend" and will be deprecated in future.')
    runner.logger.warning("a warning about this run")
    out = capsys.readouterr().out
    assert "a warning about this run" in out
    for hidden in ("an info line", "HardDiskBackend", "System environment", "Hooks will be executed"):
        assert hidden not in out, hidden
    log = Path(next(h.baseFilename for h in runner.logger.handlers if isinstance(h, logging.FileHandler))).read_text()
    for kept in ("an info line", "HardDiskBackend", "a warning about this run", "System environment"):
        assert kept in log, kept

    loud = _runner(tmp_path, "loud")  # unset: the console keeps log_level, as mmengine does
    loud.logger.info("another info line")
    assert "another info line" in capsys.readouterr().out

    with pytest.raises(ValueError, match="console_log_level: unknown level 'LOUD'"):
        _runner(tmp_path, "bad", console_log_level="LOUD")


def test_warnings_go_to_the_current_run_log(tmp_path, capsys):
    demo = _demo_module()
    fallback = tmp_path / "demo.log"
    with demo.warnings_to_log(fallback):
        from mmengine.logging import MMLogger

        log_file = tmp_path / "run.log"
        MMLogger.get_instance(f"warn_{tmp_path.name}", log_file=str(log_file), log_level="INFO")
        warnings.warn("a deprecated thing", UserWarning)
    captured = capsys.readouterr()
    assert "a deprecated thing" not in captured.out + captured.err
    assert "UserWarning: a deprecated thing" in log_file.read_text()
    # Outside the context Python prints warnings again.
    with pytest.warns(UserWarning, match="back to normal"):
        warnings.warn("back to normal", UserWarning)
    assert not logging.getLogger("py.warnings").handlers


def test_warnings_without_a_run_log_go_to_the_fallback(tmp_path, capsys, monkeypatch):
    from mmengine.logging import MMLogger

    demo = _demo_module()
    fallback = tmp_path / "demo.log"
    # The newest mmengine logger has no file (as before the first run is built).
    monkeypatch.setattr(MMLogger, "get_current_instance", classmethod(lambda cls: logging.getLogger("no_file_here")))
    with demo.warnings_to_log(fallback):
        warnings.warn("before any run", UserWarning)
    assert "before any run" not in capsys.readouterr().err
    assert "UserWarning: before any run" in fallback.read_text()


def test_progress_bar_labels():
    from pc3d.engine.hooks import ProgressBarHook

    hook = ProgressBarHook(disable=True, labels={"test": "evaluate trained"})
    assert hook.labels == {"train": "train", "val": "val", "test": "evaluate trained"}
    with pytest.raises(ValueError, match=r"unknown passes \['tset'\]"):
        ProgressBarHook(labels={"tset": "x"})


def test_deferred_bev_pictures_are_drawn_on_request(tmp_path):
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    from pc3d.engine.hooks import BEVVisualizationHook

    points = torch.cat([torch.cat([torch.full((50, 1), float(b)), torch.rand(50, 4) * 10], 1) for b in (0, 1)])
    boxes = torch.tensor([[1.0, 1.0, 0.0, 4.0, 2.0, 1.5, 0.0]])
    outputs = [dict(frame_id=f"f{i}", gt_boxes=boxes.clone(), pred_boxes=boxes.clone(), pred_scores=torch.tensor([0.9]))
               for i in range(2)]
    runner = SimpleNamespace(work_dir=str(tmp_path))
    hook = BEVVisualizationHook(out_dir="bev", max_frames=1, defer=True)
    hook.after_test_iter(runner, 0, dict(points=points), outputs)
    assert not (tmp_path / "bev").exists() and len(hook.pending) == 1  # kept, max_frames respected
    outputs[0]["pred_boxes"].add_(100.0)  # the batch's tensors may be reused: the hook kept copies
    seen = []
    paths = hook.write_pending(on_written=seen.append)
    assert [Path(p).name for p in paths] == ["f0.png"] and seen == paths and hook.written == paths
    assert Path(paths[0]).stat().st_size > 1000 and not hook.pending
    hook.after_test_iter(runner, 1, dict(points=points), outputs)
    assert not hook.pending  # max_frames counts the pictures already written
