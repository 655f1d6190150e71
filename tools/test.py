#!/usr/bin/env python
"""Evaluate a trained pc3d detector: ``python tools/test.py CONFIG CHECKPOINT [--show-dir DIR]
[--work-dir DIR] [--precise-bn N] [--cfg-options k=v ...]``. Prints the metric table (Waymo AP/APH for the synthetic
configs); with ``--show-dir`` writes a BEV PNG per evaluated frame; with ``--precise-bn N`` first recomputes the
BatchNorm statistics over N training batches (``pc3d.engine.precise_bn``)."""
import argparse
import os
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description="Evaluate a pc3d detector")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint (.pth) to evaluate")
    parser.add_argument("--work-dir", help="where logs go (default work_dirs/<config name>)")
    parser.add_argument("--show-dir", help="write BEV PNGs (points, GT green, predictions red) here")
    parser.add_argument("--show-score-thr", type=float, default=0.3, help="lowest prediction score drawn")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none",
                        help="'pytorch' under torchrun (tools/dist_test.sh), 'slurm' for one srun task per process")
    parser.add_argument("--fuse-conv-bn", action="store_true",
                        help="fold BatchNorm into the convolutions before testing (faster, same results)")
    parser.add_argument("--precise-bn", type=int, default=0, metavar="N",
                        help="recompute the BatchNorm statistics over N training batches before testing "
                             "(pc3d.engine.PreciseBNHook)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. test_dataloader.dataset.max_frames=10")
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = "0"
    return args


def main(argv=None):
    from mmengine.config import Config

    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or osp.join("work_dirs", osp.splitext(osp.basename(args.config))[0])
    cfg.load_from, cfg.resume = args.checkpoint, False
    if args.show_dir:
        cfg.custom_hooks = list(cfg.get("custom_hooks", [])) + [
            dict(type="BEVVisualizationHook", out_dir=osp.abspath(args.show_dir), score_threshold=args.show_score_thr,
                 pc_range=cfg.get("point_cloud_range"))]
    if args.precise_bn:
        cfg.custom_hooks = list(cfg.get("custom_hooks", [])) + [
            dict(type="PreciseBNHook", num_batches=args.precise_bn, at_test=True)]
    if args.fuse_conv_bn:
        cfg.custom_hooks = list(cfg.get("custom_hooks", [])) + [dict(type="FuseConvBNHook")]
    from pc3d.engine import Runner, setup_distributed, teardown_distributed  # registers pc3d's hooks, ckpt fix
    from pc3d.engine.resume import check_checkpoint

    check_checkpoint(args.checkpoint)  # a clear error for a missing, truncated or corrupt file
    setup_distributed(cfg)  # backend by device; on CPU the process group is created here

    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    teardown_distributed()
    return metrics


if __name__ == "__main__":
    main()
