"""Precise BatchNorm statistics: recompute every BatchNorm's running mean and variance over many training batches
with the final weights, instead of the exponential average (momentum 0.1) that training leaves behind.

Why: with 2-frame batches and momentum 0.1 the running statistics a detector is evaluated with are an average
over its last ~10 training batches, taken while the weights were still moving. Recomputing them over a whole
epoch with the final weights removes that noise (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021; detectron2's
PreciseBN).
"""
from typing import Iterable

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from pc3d.registry import HOOKS

from .resume import _rng_state, _set_rng_state  # the python / numpy / torch (/ CUDA) streams mid-epoch resume keeps

_BN = nn.modules.batchnorm._BatchNorm


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable, num_batches: int) -> int:
    """Sets each BatchNorm's running mean / variance of ``model`` to the mean of the per-batch statistics of up to
    ``num_batches`` batches of ``batches`` (an mmengine data loader's batches, fed through the model's
    ``data_preprocessor`` and ``forward(mode='loss')`` in train mode, without gradients).

    Weights, the model's train/eval flag, each BatchNorm's momentum and the global random streams (python, numpy,
    torch: the training pipeline's augmentations draw from them) are as before. Returns the number of batches
    used; with none the statistics are left untouched. Under distributed training every rank must call it with
    the same ``num_batches`` (its running statistics are averaged over the ranks).
    """
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    net = model.module if is_model_wrapper(model) else model
    bns = [m for m in net.modules() if isinstance(m, _BN) and m.track_running_stats]
    if not bns:
        return 0
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum) for m in bns]
    was_training, state = net.training, _rng_state()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch weighs the same
    net.train()
    used = 0
    try:
        for batch in batches:
            if used == num_batches:
                break
            data = net.data_preprocessor(batch, True)
            if isinstance(data, dict):
                net(**data, mode="loss")
            else:
                net(*data, mode="loss")
            used += 1
    finally:
        net.train(was_training)
        _set_rng_state(state)
        for m, (mean, var, count, momentum) in zip(bns, saved):
            m.momentum = momentum
            if used == 0:  # nothing seen (empty loader or an error in the first batch): keep what training left
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)
    if used and torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
        for m in bns:
            for buf in (m.running_mean, m.running_var):
                torch.distributed.all_reduce(buf)
                buf.div_(world)
    return used


@HOOKS.register_module()
class PreciseBNHook(Hook):
    """Recomputes the BatchNorm statistics (``recompute_bn_stats``) over ``num_batches`` batches of the training
    data loader at the end of training (the last epoch), or every ``interval`` epochs when given; with
    ``at_test=True`` instead before testing a loaded checkpoint (``tools/test.py --precise-bn N``).

    In training it runs after the epoch's last iteration and before the checkpoint of that epoch is written and
    before that epoch's validation, so both see the recomputed statistics (priority ABOVE_NORMAL; CheckpointHook is
    VERY_LOW and validation runs after all ``after_train_epoch`` hooks). In testing it runs after the checkpoint
    is loaded and before ``FuseConvBNHook`` folds the statistics into the convolutions.
    """

    priority = "ABOVE_NORMAL"

    def __init__(self, num_batches: int = 200, interval: int = 0, at_test: bool = False):
        if num_batches < 1:
            raise ValueError(f"PreciseBNHook: num_batches must be >= 1, got {num_batches}")
        self.num_batches, self.interval, self.at_test = int(num_batches), int(interval), bool(at_test)

    def _run(self, runner, loader) -> None:
        used = recompute_bn_stats(runner.model, loader, self.num_batches)
        runner.logger.info(f"PreciseBNHook: BatchNorm statistics recomputed over {used} training batches")

    def after_train_epoch(self, runner) -> None:
        if self.at_test:
            return
        epoch = runner.epoch + 1  # runner.epoch counts the finished epochs only after this hook
        if epoch >= runner.max_epochs or (self.interval > 0 and epoch % self.interval == 0):
            self._run(runner, runner.train_dataloader)

    def before_test(self, runner) -> None:
        if not self.at_test:
            return
        if runner.cfg.get("train_dataloader") is None:
            raise ValueError("PreciseBNHook(at_test=True): the config has no train_dataloader to take statistics from")
        self._run(runner, runner.build_dataloader(runner.cfg.train_dataloader, seed=runner.seed))
