#!/usr/bin/env python
"""The Python half of ``tools/gpu_check.sh``: a short GPU training run and the paper-scale detectors' latency.

    python tools/gpu_check.py train   --config CFG --data-root DIR --iters 300 [--device cuda] --out train.json
    python tools/gpu_check.py latency [--configs flatformer_waymo ...] [--points 150000] [--device cuda] --out lat.json

``train`` runs ``--iters`` optimiser steps of CFG's detector on its training set (plain loop: data preprocessor,
loss, backward, AdamW at the config's peak rate) and writes the loss curve (every iteration's loss is kept on the
device and read once at the end), the mean loss of the first and the last 10% of iterations, seconds per iteration
and, on CUDA, the host synchronisations per iteration counted by ``torch.cuda.set_sync_debug_mode`` (the data-
dependent sizes of voxelization and target assignment need some; the loop itself adds none).

``latency`` times each config's detector at batch 1 on suite ``models``' 150k-point frame, points in, boxes out,
in float32 and under autocast (float16 on CUDA, bfloat16 on CPU), after warm-up: median of ``--repeats`` runs,
with peak CUDA memory.
"""
import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pc3d first


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(args) -> dict:
    import torch
    from mmengine.config import Config
    from torch.utils.data import DataLoader

    import pc3d.datasets  # noqa: F401  (registers the datasets and transforms)
    from pc3d.datasets import collate_batch
    from pc3d.registry import DATASETS, MODELS

    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = Config.fromfile(args.config)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = args.data_root
    dataset = DATASETS.build(dataset_cfg)
    loader = DataLoader(dataset, batch_size=cfg.train_dataloader.batch_size, shuffle=True, collate_fn=collate_batch,
                        num_workers=args.workers, drop_last=True, persistent_workers=args.workers > 0)
    model = MODELS.build(cfg.model).to(device).train()
    lr = max(float(s.get("eta_max", 0.0)) for s in cfg.param_scheduler) if cfg.get("param_scheduler") else 1e-3
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr or 1e-3, weight_decay=0.01)
    losses, syncs, it = [], [], 0
    start = None
    while it < args.iters:
        for batch in loader:
            if it == 1:  # the first iteration (allocator warm-up, kernel caches) is not timed
                _sync(device)
                start = time.perf_counter()
            data = model.data_preprocessor(batch, training=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("warn")
                loss_dict = model(**data, mode="loss")
                loss = sum(v for k, v in loss_dict.items() if k.startswith("loss"))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
            syncs.append(sum("synchroniz" in str(w.message) for w in caught))
            it += 1
            if it >= args.iters:
                break
    _sync(device)
    seconds = time.perf_counter() - start if start is not None else float("nan")
    curve = torch.stack(losses).float().cpu().tolist()
    k = max(1, len(curve) // 10)
    return {"config": args.config, "device": str(device), "iters": len(curve), "loss": curve,
            "loss_first": statistics.fmean(curve[:k]), "loss_last": statistics.fmean(curve[-k:]),
            "s_per_iter": seconds / max(1, len(curve) - 1),
            "host_syncs_per_iter": statistics.fmean(syncs[1:]) if device.type == "cuda" and len(syncs) > 1 else None}


def latency(args) -> dict:
    import torch

    from pc3d.apis import init_model
    from pc3d.benchmark import suite_models

    device = torch.device(args.device)
    points = suite_models.frame_points(args.points).to(device)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    rows = []
    for name in args.configs:
        model = init_model(str(suite_models.config_path(name)), device=device)
        row = {"config": name, "points": args.points}
        for mode in ("fp32", "amp"):
            run = suite_models.detector_call(model, points)

            def call():
                with torch.autocast(device.type, dtype=amp_dtype, enabled=mode == "amp"):
                    run()
            for _ in range(args.warmup):
                call()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for _ in range(args.repeats):
                _sync(device)
                t0 = time.perf_counter()
                call()
                _sync(device)
                times.append((time.perf_counter() - t0) * 1000.0)
            row[f"{mode}_ms"] = round(statistics.median(times), 2)
            row[f"{mode}_hz"] = round(1000.0 / statistics.median(times), 2)
            if device.type == "cuda":
                row[f"{mode}_peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)
        rows.append(row)
        del model
    return {"device": str(device), "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "rows": rows}


def main(argv=None) -> int:
    from pc3d.benchmark import suite_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", default=str(ROOT / "configs" / "centerpoint" / "centerpoint_pillar_synthetic.py"))
    t.add_argument("--data-root", required=True)
    t.add_argument("--iters", type=int, default=300)
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--device", default="cuda")
    t.add_argument("--out", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--configs", nargs="+", default=list(suite_models.CONFIGS))
    lat.add_argument("--points", type=int, default=suite_models.NUM_POINTS)
    lat.add_argument("--warmup", type=int, default=3)
    lat.add_argument("--repeats", type=int, default=10)
    lat.add_argument("--device", default="cuda")
    lat.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = train(args) if args.command == "train" else latency(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "loss"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
