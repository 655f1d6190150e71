#!/usr/bin/env python
"""pc3d's main job (``make demo``): simulate a small synthetic LiDAR dataset if it is missing, train the
default detector on the CPU, evaluate it (Waymo AP/APH on held-out frames, also before training) and
write BEV pictures of a few validation frames.

    python tools/demo.py [--data-root data/synthetic] [--work-dir work_dirs/demo] [--epochs N] [--verbose]

The console shows one progress line per phase (simulate, evaluate untrained, train, evaluate trained,
pictures), the metrics table and where the pictures, metrics and logs are. Everything else (mmengine's
environment, config and hook dumps, per-iteration losses, warnings, the simulator's output) goes to the
log files under the work dir; ``--verbose`` prints it to the console as well.
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pc3d first

DEFAULT_CONFIG = ROOT / "configs" / "centerpoint" / "centerpoint_pillar_synthetic.py"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="detector config (default: the CPU pillar model)")
    p.add_argument("--data-root", default=str(ROOT / "data" / "synthetic"), help="synthetic dataset folder")
    p.add_argument("--train-frames", type=int, default=None, help="frames to simulate for training (config's demo value)")
    p.add_argument("--val-frames", type=int, default=None, help="held-out frames to simulate and evaluate on")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (config's max_epochs)")
    p.add_argument("--work-dir", default=str(ROOT / "work_dirs" / "demo"), help="logs, checkpoints, metrics, pictures")
    p.add_argument("--num-vis", type=int, default=4, help="validation frames to draw as BEV PNGs")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--skip-untrained", action="store_true", help="do not evaluate the untrained model first")
    p.add_argument("--verbose", action="store_true",
                   help="also print mmengine's logs (environment, config, hooks, per-iteration lines), warnings "
                        "and the simulator's output to the console")
    return p.parse_args(argv)


def _frame_files(root: Path):
    """{path: mtime} of the frame files of both splits under ``root``."""
    return {p: p.stat().st_mtime_ns for split in ("train", "val") for p in (root / split).glob("*.npz")}


def ensure_dataset(root: Path, n_train: int, n_val: int, workers: int, label: str, log_path: Path,
                   verbose: bool) -> float:
    """Simulates the dataset with tools/create_data.py unless both splits are there; returns seconds spent.

    Quiet (``verbose=False``): the simulator's output goes to ``log_path`` and one bar counts the frame
    files it writes; a failure names the log and shows its end."""
    def count(split):
        info = root / f"{split}_infos.json"
        return len(json.loads(info.read_text()).get("frames", [])) if info.exists() else 0

    if count("train") >= n_train and count("val") >= n_val:
        print(f"{label}: dataset found at {root} ({count('train')} train / {count('val')} val frames)", flush=True)
        return 0.0
    cmd = [sys.executable, str(ROOT / "tools" / "create_data.py"), "synthetic", "--out", str(root),
           "--train", str(n_train), "--val", str(n_val), "--workers", str(workers)]
    t0 = time.perf_counter()
    if verbose:
        print(f"{label}: {n_train} train + {n_val} val frames into {root}", flush=True)
        subprocess.run(cmd, check=True)
        return time.perf_counter() - t0
    from tqdm import tqdm

    before = _frame_files(root)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log, tqdm(total=n_train + n_val, desc=label, unit="frame", dynamic_ncols=True) as bar:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        while True:
            done = proc.poll() is not None
            # frames written by this run: new files, or files rewritten since the run started
            written = sum(1 for p, m in _frame_files(root).items() if before.get(p) != m)
            bar.update(min(written, bar.total) - bar.n)
            if done:
                break
            time.sleep(0.5)
    if proc.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-20:])
        raise SystemExit(f"[demo] simulating the dataset failed (exit {proc.returncode}); its output is in "
                         f"{log_path}, ending:\n{tail}")
    return time.perf_counter() - t0


class _RunLogHandler(logging.Handler):
    """Writes records (here: Python warnings) into the log file of the newest mmengine logger, or into
    ``fallback`` while no run has a log file yet; never to the console."""

    def __init__(self, fallback: Path):
        super().__init__(logging.WARNING)
        self.fallback, self._fallback_handler = fallback, None

    def emit(self, record: logging.LogRecord) -> None:
        from mmengine.logging import MMLogger

        files = [h for h in MMLogger.get_current_instance().handlers if isinstance(h, logging.FileHandler)]
        if not files:
            if self._fallback_handler is None:
                self.fallback.parent.mkdir(parents=True, exist_ok=True)
                self._fallback_handler = logging.FileHandler(self.fallback, "a")
                self._fallback_handler.setFormatter(
                    logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
            files = [self._fallback_handler]
        for handler in files:
            handler.handle(record)

    def close(self) -> None:
        if self._fallback_handler is not None:
            self._fallback_handler.close()
        super().close()


@contextmanager
def warnings_to_log(fallback: Path):
    """Python ``warnings`` raised inside go to the current run's log file (see ``_RunLogHandler``)."""
    logger = logging.getLogger("py.warnings")
    handler = _RunLogHandler(fallback)
    propagate = logger.propagate
    logging.captureWarnings(True)
    logger.addHandler(handler)
    logger.propagate = False  # a handler on the root logger would print them again
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logging.captureWarnings(False)
        handler.close()


def _log_file(runner) -> str:
    """The path of ``runner``'s mmengine log file."""
    for handler in runner.logger.handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return os.path.join(runner.log_dir, f"{runner.timestamp}.log")


def build_cfg(args, work_dir: Path, stage: str, n_train: int, n_val: int, labels: dict):
    from mmengine.config import Config

    cfg = Config.fromfile(args.config)
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[key].dataset.data_root = args.data_root
    for key in ("val_dataloader", "test_dataloader"):
        cfg[key].dataset.max_frames = n_val
    cfg.train_dataloader.dataset.max_frames = n_train
    planned = cfg.train_cfg.max_epochs
    epochs = args.epochs or planned
    cfg.train_cfg.max_epochs = epochs
    # Evaluated once, by the test pass after training: no validation loop (mmengine would otherwise
    # validate after the last epoch whatever val_interval says, the same frames a second time).
    cfg.train_cfg.pop("val_interval", None)
    cfg.train_cfg.pop("val_begin", None)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    for sched in cfg.param_scheduler:  # schedules that span the whole run follow the epoch count
        if sched.get("end") == planned:
            sched["end"] = epochs
        if sched.get("T_max") == planned:
            sched["T_max"] = epochs
    cfg.work_dir = str(work_dir / stage)
    cfg.launcher = "none"
    # One labelled bar per phase, shown also when the console is not a terminal.
    bar = dict(type="ProgressBarHook", disable=False, labels=labels)
    hooks = list(cfg.get("custom_hooks", []))
    at = [i for i, h in enumerate(hooks) if h.get("type") in ("ProgressBarHook", "pc3d.ProgressBarHook")]
    cfg.custom_hooks = [h for i, h in enumerate(hooks) if i not in at]
    cfg.custom_hooks.insert(at[0] if at else len(cfg.custom_hooks), bar)  # the config's place, if it has one
    if not args.verbose:  # the console shows warnings and errors; the log file keeps log_level (INFO)
        cfg.console_log_level = "WARNING"
    return cfg


def metric_table(rows):
    """rows: list of (name, metrics dict) -> printable table of Waymo AP/APH per class and level."""
    from pc3d.classes import WAYMO_CLASSES as classes

    lines = [f"{'model':<12}{'class':<12}{'L1 AP':>8}{'L1 APH':>8}{'L2 AP':>8}{'L2 APH':>8}"]
    for name, m in rows:
        for c in classes:
            vals = [m.get(f"{c}/{k}", float("nan")) for k in ("L1_AP", "L1_APH", "L2_AP", "L2_APH")]
            lines.append(f"{name:<12}{c:<12}" + "".join(f"{v:>8.4f}" for v in vals))
        vals = [m.get(k, float("nan")) for k in ("mAP_L1", "mAPH_L1", "mAP_L2", "mAPH_L2")]
        lines.append(f"{name:<12}{'mean':<12}" + "".join(f"{v:>8.4f}" for v in vals))
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    work_dir = Path(args.work_dir).resolve()
    if args.verbose:
        return run(args, work_dir)
    with warnings_to_log(work_dir / "demo.log"):
        return run(args, work_dir)


def run(args, work_dir: Path):
    import torch

    torch.set_num_threads(args.threads)
    from mmengine.config import Config

    from pc3d.engine import Runner

    t_start = time.perf_counter()
    demo = Config.fromfile(args.config).get("demo", {})
    n_train = args.train_frames or demo.get("train_frames", 160)
    n_val = args.val_frames or demo.get("val_frames", 40)
    phases = ["simulate"] + ([] if args.skip_untrained else ["evaluate untrained"]) + \
             ["train", "evaluate trained", "pictures"]
    label = {name: f"[demo {i + 1}/{len(phases)}] {name}" for i, name in enumerate(phases)}
    times = {"simulate_s": ensure_dataset(Path(args.data_root), n_train, n_val, max(1, os.cpu_count() or 1),
                                          label["simulate"], work_dir / "simulate.log", args.verbose)}

    results, logs = [], []
    if not args.skip_untrained:
        t0 = time.perf_counter()
        cfg = build_cfg(args, work_dir, "untrained", n_train, n_val, {"test": label["evaluate untrained"]})
        cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=-1)
        runner = Runner.from_cfg(cfg)
        logs.append(_log_file(runner))
        results.append(("untrained", runner.test()))
        times["eval_untrained_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cfg = build_cfg(args, work_dir, "train", n_train, n_val,
                    {"train": label["train"], "test": label["evaluate trained"]})
    runner = Runner.from_cfg(cfg)
    logs.append(_log_file(runner))
    runner.train()
    times["train_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    vis_dir = work_dir / "bev"
    from pc3d.engine.hooks import BEVVisualizationHook

    # The frames are kept during the test pass and drawn afterwards, as the pictures phase.
    pictures = BEVVisualizationHook(out_dir=str(vis_dir), max_frames=args.num_vis,
                                    pc_range=cfg.get("point_cloud_range"), defer=True)
    runner.register_hook(pictures, priority="LOW")
    results.append(("trained", runner.test()))
    times["eval_trained_s"] = time.perf_counter() - t0

    from tqdm import tqdm

    t0 = time.perf_counter()
    with tqdm(total=len(pictures.pending), desc=label["pictures"], unit="png", dynamic_ncols=True) as bar:
        pictures.write_pending(on_written=lambda path: bar.update(1))
    times["pictures_s"] = time.perf_counter() - t0
    times["total_s"] = time.perf_counter() - t_start

    metrics_path = work_dir / "demo_metrics.json"
    metrics_path.write_text(json.dumps({"metrics": dict(results), "times": times, "config": args.config,
                                        "pictures": [str(p) for p in pictures.written], "logs": logs}, indent=2))
    table = metric_table(results)
    print(f"\n[demo] Waymo-style detection metrics on held-out frames "
          f"({n_val} val frames, detection range {cfg.get('point_cloud_range')}):\n{table}\n")
    print("[demo] times (s): " + ", ".join(f"{k[:-2]} {v:.0f}" for k, v in times.items()))
    print(f"[demo] pictures: {vis_dir} ({len(pictures.written)} bird's-eye views: points grey, ground truth "
          f"green, predictions red)")
    print(f"[demo] metrics:  {metrics_path}")
    if (work_dir / "simulate.log").exists() and times["simulate_s"] > 0 and not args.verbose:
        logs.append(str(work_dir / "simulate.log"))
    print("[demo] logs (config, hooks, per-iteration losses, warnings):")
    for path in logs:
        print(f"    {path}")
    return dict(results)


if __name__ == "__main__":
    main()
