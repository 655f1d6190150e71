"""Checks that data-parallel replicas stay identical, and writes evaluation metrics to a JSON file.

DDP keeps replicas equal only if every rank starts from the same weights, all-reduces every gradient
and steps the same optimizer; a parameter missing from the reduction (an unused branch, a
``find_unused_parameters`` slip) or a rank-dependent update makes them drift silently. This hook
catches that within one iteration.
"""
import json
import os.path as osp
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from pc3d.registry import HOOKS

_MASK = (1 << 61) - 1  # checksums live in [0, 2^61): exact in int64 and as a Python int


def tensor_checksum(tensors) -> int:
    """An exact fingerprint of the bits of ``tensors`` (any dtypes/shapes): two lists give the same value
    when they are bit-identical, and (with overwhelming probability) different values otherwise.

    Each tensor's bytes are read as int32 words (int8 for odd sizes), weighted by their position, and
    summed in int64 (wrapping arithmetic is exact and order-independent, so the sum is deterministic).
    """
    total = 0
    for i, t in enumerate(tensors):
        flat = t.detach().reshape(-1).contiguous().cpu()
        if flat.numel() == 0:
            words = torch.zeros(0, dtype=torch.int64)
        else:
            raw = flat.view(torch.uint8)
            words = (raw.view(torch.int32) if raw.numel() % 4 == 0 else raw).to(torch.int64)
        pos = torch.arange(1, words.numel() + 1, dtype=torch.int64) * 2654435761 + (i + 1) * 40503
        total = (total * 1000003 + int((words * pos).sum()) + words.numel()) & _MASK
    return total


@HOOKS.register_module()
class ParameterConsistencyHook(Hook):
    """After every ``interval`` training iterations all-gathers a checksum of the model's parameters
    (and of its buffers) from every rank and compares them.

    Args:
        interval: check every this many iterations.
        check_buffers: also require equal buffers (BN running statistics: equal across ranks only with
            SyncBN, since mmengine's DDP does not broadcast buffers).
        on_mismatch: 'raise' (RuntimeError naming the iteration and the ranks' checksums) or 'warn'.
        out_file: rank 0 writes ``{"world_size", "records": [{"iter", "params": [per rank],
            "buffers": [per rank]}]}`` here at the end of training (relative to the work dir).
    Single-process runs record their own checksums only.
    """

    priority = "LOW"

    def __init__(self, interval: int = 1, check_buffers: bool = False, on_mismatch: str = "raise",
                 out_file: Optional[str] = None):
        if on_mismatch not in ("raise", "warn"):
            raise ValueError(f"on_mismatch must be 'raise' or 'warn', got {on_mismatch!r}")
        self.interval, self.check_buffers, self.on_mismatch, self.out_file = interval, check_buffers, on_mismatch, out_file
        self.records = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        mine = torch.tensor([tensor_checksum(list(model.parameters())), tensor_checksum(list(model.buffers()))],
                            dtype=torch.int64)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # gloo gathers CPU tensors; nccl needs them on this rank's device.
            device = next(model.parameters()).device if dist.get_backend() == "nccl" else torch.device("cpu")
            gathered = [torch.zeros_like(mine, device=device) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, mine.to(device))
            sums = [g.cpu().tolist() for g in gathered]
        else:
            sums = [mine.tolist()]
        record = {"iter": runner.iter + 1, "params": [s[0] for s in sums], "buffers": [s[1] for s in sums]}
        self.records.append(record)
        bad = len(set(record["params"])) > 1 or (self.check_buffers and len(set(record["buffers"])) > 1)
        if bad:
            msg = (f"data-parallel replicas diverged after iteration {record['iter']}: parameter checksums per rank "
                   f"{record['params']}, buffer checksums per rank {record['buffers']}")
            if self.on_mismatch == "raise":
                raise RuntimeError(msg)
            runner.logger.warning(msg)

    def after_train(self, runner) -> None:
        if self.out_file is None or runner.rank != 0:
            return
        path = self.out_file if osp.isabs(self.out_file) else osp.join(runner.work_dir, self.out_file)
        with open(path, "w") as f:
            json.dump({"world_size": runner.world_size, "records": self.records}, f)


@HOOKS.register_module()
class DumpMetricsHook(Hook):
    """Rank 0 writes the metrics of every validation/test pass to a JSON file (a list of dicts, one per
    pass, each with ``mode`` 'val'|'test' and ``iter``), e.g. to compare runs from a script.

    Args:
        out_file: path (relative to the work dir).
    """

    priority = "VERY_LOW"

    def __init__(self, out_file: str = "metrics.json"):
        self.out_file = out_file
        self.passes = []

    def _dump(self, runner, mode, metrics) -> None:
        if runner.rank != 0:
            return
        self.passes.append({"mode": mode, "iter": runner.iter, **{k: float(v) for k, v in (metrics or {}).items()}})
        path = self.out_file if osp.isabs(self.out_file) else osp.join(runner.work_dir, self.out_file)
        with open(path, "w") as f:
            json.dump(self.passes, f, indent=1)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._dump(runner, "val", metrics)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._dump(runner, "test", metrics)
