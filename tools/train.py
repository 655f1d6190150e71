#!/usr/bin/env python
"""Train a pc3d detector: ``python tools/train.py CONFIG [--work-dir DIR] [--cfg-options k=v ...]
[--resume [CKPT]] [--launcher none|pytorch|slurm] [--amp] [--seed N] [--init-seed N [--init-seed-modules M ...]]
[--deterministic]``.

Multi-process: ``torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch`` (or
``tools/dist_train.sh CONFIG N``); the backend follows the device (nccl on CUDA, gloo on CPU).

Runs mmengine's Runner (pc3d.engine.Runner: atomic checkpoints) with a progress bar, TensorBoard
scalars under ``<work-dir>/<timestamp>/vis_data`` and checkpoints in ``<work-dir>``.
"""
import argparse
import os
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description="Train a pc3d detector")
    parser.add_argument("config", help="config file (python, with _base_)")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None,
                        help="resume from CKPT, or from the work dir's newest loadable checkpoint when no CKPT is given")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision: float16 AMP on CUDA, bfloat16 autocast on CPU")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none",
                        help="'pytorch' for torchrun multi-process training, 'slurm' for one srun task per process")
    parser.add_argument("--seed", type=int, default=None, help="random seed (overrides randomness.seed)")
    parser.add_argument("--init-seed", type=int, default=None,
                        help="start from the weights seed N would give, with --seed's data order and augmentation "
                             "(which of the two makes a run good or bad); default: the run's seed")
    parser.add_argument("--init-seed-modules", nargs="+", default=None, metavar="MODULE",
                        help="with --init-seed: only these modules (e.g. backbone3d head.heatmap) take that "
                             "seed's weights, the rest --seed's own")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic algorithms (randomness.deterministic=True): bit-identical reruns")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. train_cfg.max_epochs=2 model.head.min_radius=3")
    args = parser.parse_args(argv)
    if args.init_seed_modules and args.init_seed is None:
        parser.error("--init-seed-modules needs --init-seed")
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = "0"
    return args


def build_config(args):
    from mmengine.config import Config

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        import torch

        if torch.cuda.is_available():
            cfg.optim_wrapper.type = "AmpOptimWrapper"
            cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
        else:
            cfg.optim_wrapper.type = "CPUAutocastOptimWrapper"
    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get("randomness") or {})
        if args.seed is not None:
            randomness["seed"] = args.seed
        if args.deterministic:
            randomness["deterministic"] = True
        cfg.randomness = randomness
    if (cfg.get("randomness") or {}).get("deterministic"):
        # cuBLAS needs a fixed workspace for deterministic results (read when CUDA initialises).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if args.resume is not None:
        from pc3d.engine.resume import check_checkpoint, find_resume_checkpoint

        if args.resume == "auto":  # the newest checkpoint that loads, skipping truncated/corrupt ones
            ckpt = find_resume_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
            if ckpt is None:
                print(f"--resume: no loadable checkpoint in {cfg.work_dir}, training from scratch", file=sys.stderr)
        else:
            ckpt = args.resume
            check_checkpoint(ckpt)  # a clear CheckpointError before any setup when it is unreadable
        cfg.resume, cfg.load_from = ckpt is not None, ckpt
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    from pc3d.engine import Runner, setup_distributed, teardown_distributed  # registers pc3d's hooks, ckpt fix

    setup_distributed(cfg)  # backend by device; on CPU the process group is created here
    if args.init_seed is not None:
        from pc3d.engine.init_seed import use_init_seed

        path = use_init_seed(cfg, args.init_seed, args.init_seed_modules)
        print(f"--init-seed {args.init_seed}: initial weights from {path}")
    runner = Runner.from_cfg(cfg)
    runner.train()
    teardown_distributed()
    return runner


if __name__ == "__main__":
    main()
