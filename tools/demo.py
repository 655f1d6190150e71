#!/usr/bin/env python
"""pc3d's main job (``make demo``): simulate a small synthetic LiDAR dataset if it is missing, train the
default detector on the CPU, evaluate it (Waymo AP/APH on held-out frames, also before training) and
write BEV pictures of a few validation frames.

    python tools/demo.py [--data-root data/synthetic] [--work-dir work_dirs/demo] [--epochs N]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pc3d first

DEFAULT_CONFIG = ROOT / "configs" / "centerpoint_pillar_synthetic.py"


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
    return p.parse_args(argv)


def ensure_dataset(root: Path, n_train: int, n_val: int, workers: int) -> float:
    """Simulates the dataset with tools/create_data.py unless both splits are there; returns seconds spent."""
    def count(split):
        info = root / f"{split}_infos.json"
        return len(json.loads(info.read_text()).get("frames", [])) if info.exists() else 0

    if count("train") >= n_train and count("val") >= n_val:
        print(f"[demo] dataset found at {root} ({count('train')} train / {count('val')} val frames)")
        return 0.0
    print(f"[demo] simulating {n_train} train + {n_val} val frames into {root}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "tools" / "create_data.py"), "synthetic", "--out", str(root),
                    "--train", str(n_train), "--val", str(n_val), "--workers", str(workers)], check=True)
    return time.perf_counter() - t0


def build_cfg(args, work_dir: Path, stage: str, n_train: int, n_val: int):
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
    cfg.train_cfg.val_interval = epochs + 1  # evaluated once, by the test pass after training
    for sched in cfg.param_scheduler:  # schedules that span the whole run follow the epoch count
        if sched.get("end") == planned:
            sched["end"] = epochs
        if sched.get("T_max") == planned:
            sched["T_max"] = epochs
    cfg.work_dir = str(work_dir / stage)
    cfg.launcher = "none"
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
    import torch

    torch.set_num_threads(args.threads)
    from mmengine.config import Config

    from pc3d.engine import Runner

    t_start = time.perf_counter()
    demo = Config.fromfile(args.config).get("demo", {})
    n_train = args.train_frames or demo.get("train_frames", 160)
    n_val = args.val_frames or demo.get("val_frames", 40)
    work_dir = Path(args.work_dir)
    times = {"simulate_s": ensure_dataset(Path(args.data_root), n_train, n_val, workers=max(1, os.cpu_count() or 1))}

    results = []
    if not args.skip_untrained:
        t0 = time.perf_counter()
        cfg = build_cfg(args, work_dir, "untrained", n_train, n_val)
        cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=-1)
        results.append(("untrained", Runner.from_cfg(cfg).test()))
        times["eval_untrained_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cfg = build_cfg(args, work_dir, "train", n_train, n_val)
    runner = Runner.from_cfg(cfg)
    runner.train()
    times["train_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    vis_dir = work_dir / "bev"
    runner.register_hook(dict(type="BEVVisualizationHook", out_dir=str(vis_dir), max_frames=args.num_vis,
                              pc_range=cfg.get("point_cloud_range")), priority="LOW")
    results.append(("trained", runner.test()))
    times["eval_trained_s"] = time.perf_counter() - t0
    times["total_s"] = time.perf_counter() - t_start

    table = metric_table(results)
    print("\n[demo] Waymo-style detection metrics on held-out frames "
          f"({n_val} val frames, detection range {cfg.get('point_cloud_range')}):\n{table}")
    print("[demo] times: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    print(f"[demo] BEV pictures: {vis_dir}")
    (work_dir / "demo_metrics.json").write_text(json.dumps({"metrics": dict(results), "times": times,
                                                            "config": args.config}, indent=2))
    return dict(results)


if __name__ == "__main__":
    main()
