"""Piecewise-cosine parameter schedules: the one-cycle of OpenPCDet's ``adam_onecycle`` and mmcv's
``CyclicLrUpdaterHook``, step for step.

Both official schedules split the run's ``T`` iterations at ``int(fraction * T)`` and, inside phase k
(steps ``[b_k, b_{k+1})``), cosine-anneal from ``values[k]`` to ``values[k + 1]``::

    value(s) = v_{k+1} + (v_k - v_{k+1}) / 2 * (1 + cos(pi * (s - b_k) / (b_{k+1} - b_k)))

OpenPCDet's one-cycle (lr_max, div_factor, moms, pct_start) is ``CosinePhasesLR(values=(lr_max /
div_factor, lr_max, lr_max / div_factor / 1e4), milestones=(pct_start,))`` with
``CosinePhasesMomentum(values=(moms[0], moms[1], moms[0]), milestones=(pct_start,))``; mmcv's
``cyclic`` policy (base lr, target_ratio (r_up, r_end), step_ratio_up, one cycle) is
``CosinePhasesLR(values=(lr, lr * r_up, lr * r_end), milestones=(step_ratio_up,))``. mmengine's
``OneCycleLR`` puts its phase boundary at ``pct_start * T - 1`` and has no momentum cycle, so it
differs from both by a step. The value at step s is set before iteration s, as both official loops do.
"""
import math
from typing import Sequence

from mmengine.optim.scheduler.momentum_scheduler import MomentumSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS


def cosine_phases_value(step: int, total: int, values: Sequence[float], milestones: Sequence[float]) -> float:
    """The scheduled value at ``step`` (0-based) of ``total`` steps (see the module docstring)."""
    bounds = [0] + [int(m * total) for m in milestones] + [total]
    k = max(i for i in range(len(bounds) - 1) if bounds[i] <= step) if step < total else len(bounds) - 2
    start, end = bounds[k], bounds[k + 1]
    pct = (step - start) / (end - start)
    return values[k + 1] + (values[k] - values[k + 1]) / 2.0 * (math.cos(math.pi * pct) + 1)


class CosinePhasesParamScheduler(_ParamScheduler):
    """Sets ``param_name`` of every parameter group to the piecewise-cosine schedule.

    Args:
        optimizer: the (wrapped) optimizer.
        param_name: 'lr' or 'momentum'.
        values: the k + 2 values at the phase boundaries (start, one per milestone, end).
        milestones: the k increasing fractions of the run in (0, 1) where phases change.
        begin, end: the steps (iterations; epochs with ``by_epoch``) the schedule spans; ``end - begin``
            is ``T``. ``convert_to_iter_based=True`` in a config turns epochs into iterations.
    """

    def __init__(self, optimizer, param_name: str, values: Sequence[float], milestones: Sequence[float] = (),
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True, verbose: bool = False):
        milestones, values = [float(m) for m in milestones], [float(v) for v in values]
        if len(values) != len(milestones) + 2:
            raise ValueError(f"{type(self).__name__}: values must hold len(milestones) + 2 = "
                             f"{len(milestones) + 2} numbers, got {len(values)}")
        if any(not 0 < m < 1 for m in milestones) or sorted(milestones) != milestones:
            raise ValueError(f"{type(self).__name__}: milestones must increase within (0, 1), got {milestones}")
        if end == INF:
            raise ValueError(f"{type(self).__name__}: needs a finite end (the schedule's length)")
        self.values, self.milestones, self.total = values, milestones, int(end - begin)
        bounds = [0] + [int(m * self.total) for m in milestones] + [self.total]
        if any(b1 <= b0 for b0, b1 in zip(bounds, bounds[1:])):
            raise ValueError(f"{type(self).__name__}: {self.total} steps leave an empty phase at milestones "
                             f"{milestones}")
        super().__init__(optimizer, param_name, begin=begin, end=end, last_step=last_step, by_epoch=by_epoch,
                         verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, by_epoch=True, epoch_length=None, **kwargs):
        """The iteration-based schedule of an epoch-based config (``convert_to_iter_based=True``)."""
        if not by_epoch or not epoch_length or epoch_length <= 0:
            raise ValueError(f"{cls.__name__}: converting to iterations needs by_epoch=True and a positive "
                             f"epoch_length, got by_epoch={by_epoch}, epoch_length={epoch_length}")
        end = end if end == INF else int(end * epoch_length)
        return cls(*args, begin=int(begin * epoch_length), end=end, by_epoch=False, **kwargs)

    def _get_value(self):
        v = cosine_phases_value(self.last_step, self.total, self.values, self.milestones)
        return [v for _ in self.optimizer.param_groups]


@PARAM_SCHEDULERS.register_module()
class CosinePhasesLR(CosinePhasesParamScheduler):
    """``CosinePhasesParamScheduler`` of the learning rate."""

    def __init__(self, optimizer, *args, **kwargs):
        super().__init__(optimizer, "lr", *args, **kwargs)


@PARAM_SCHEDULERS.register_module()
class CosinePhasesMomentum(MomentumSchedulerMixin, CosinePhasesParamScheduler):
    """``CosinePhasesParamScheduler`` of the momentum (SGD's momentum, Adam's beta1)."""
