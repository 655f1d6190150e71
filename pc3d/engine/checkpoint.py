"""Checkpoint loading fix: loading mmengine's own checkpoints under ``weights_only``.

torch >= 2.6 loads with ``weights_only=True`` by default, which refuses any pickled class it does not
know. mmengine 0.10.7 stores its ``MessageHub`` state (``HistoryBuffer`` objects holding numpy
arrays) in every checkpoint, so ``Runner.resume`` fails. Instead of turning the safe loader off, the
few classes such a checkpoint contains are added to torch's allow-list.
"""
import torch

_allowed = False


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
    torch.serialization.add_safe_globals(safe)
    _allowed = True
