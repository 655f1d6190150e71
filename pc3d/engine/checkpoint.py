"""Checkpoint loading fix: loading mmengine's own checkpoints under ``weights_only``.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses any pickled class it does not
know. mmengine 0.10.7 stores its ``MessageHub`` state (``HistoryBuffer`` objects holding numpy
arrays) in every checkpoint, so ``Runner.resume`` fails. Instead of turning the safe loader off, the
few classes such a checkpoint contains are added to torch's allow-list.

Two of them pickle functions by attribute: ``HistoryBuffer`` its statistics (``getattr(HistoryBuffer,
'mean')``) and the cosine/linear parameter schedulers their annealing function
(``getattr(OneCycleParamScheduler, '_annealing_cos')``). Allow-listing ``builtins.getattr`` itself
would let a malicious file reach any attribute of any allowed object, so that global name is bound to
:func:`_checkpoint_getattr`, which resolves only those attributes.
"""
import pickle

import torch

_allowed = False


def _checkpoint_getattr(obj, name: str):
    """``getattr`` restricted to what mmengine checkpoints need (see the module docstring)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.optim.scheduler.param_scheduler import _ParamScheduler

    if obj is HistoryBuffer and name in HistoryBuffer._statistics_methods:
        return getattr(obj, name)
    if isinstance(obj, type) and issubclass(obj, _ParamScheduler) and name in ("_annealing_cos", "_annealing_linear"):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"checkpoint asks for getattr({obj!r}, {name!r}), which pc3d does not allow")


def allow_mmengine_checkpoints() -> None:
    """Allow-lists the classes of an mmengine checkpoint for ``torch.load(weights_only=True)`` (idempotent)."""
    global _allowed
    if _allowed:
        return
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    safe = [HistoryBuffer, np.ndarray, np.dtype, np._core.multiarray._reconstruct, np._core.multiarray.scalar]
    # numpy pickles a dtype through its class (numpy.dtypes.Float64DType etc.).
    safe += [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_, np.uint8)]
    # The parameter scheduler classes (their state names them for the annealing function).
    import mmengine.optim.scheduler as schedulers
    from mmengine.optim.scheduler.param_scheduler import _ParamScheduler

    safe += [c for c in vars(schedulers).values() if isinstance(c, type) and issubclass(c, _ParamScheduler)]
    safe.append((_checkpoint_getattr, "builtins.getattr"))
    HistoryBuffer()  # fills HistoryBuffer._statistics_methods with min/max/current/mean
    torch.serialization.add_safe_globals(safe)
    _allowed = True
