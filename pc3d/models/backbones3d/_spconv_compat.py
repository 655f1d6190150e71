"""spconv import with the one CPU fix pc3d needs, applied in exactly one place.

spconv 2.3.8 asks ``torch.cuda.current_stream()`` for a stream handle in its backward (and hash) ops
even for CPU tensors, which raises on a CPU-only torch. Its CPU kernels ignore the stream, so when
CUDA is unavailable the handle is replaced by 0 (the default stream).
"""
import torch

_patched = False


def _cpu_stream() -> int:
    return 0


def import_spconv():
    """Returns ``spconv.pytorch`` with the CPU stream fix applied (idempotent)."""
    global _patched
    import spconv.pytorch as spconv

    if not _patched and not torch.cuda.is_available():
        from spconv.pytorch import hash as spconv_hash
        from spconv.pytorch import ops as spconv_ops

        # Both modules imported the function by name, so each module's binding is replaced.
        spconv_ops.get_current_stream = _cpu_stream
        spconv_hash.get_current_stream = _cpu_stream
        _patched = True
    return spconv
