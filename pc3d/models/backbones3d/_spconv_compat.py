"""spconv import with the one CPU fix pc3d needs, applied in exactly one place.

spconv 2.3.8 asks ``torch.cuda.current_stream()`` for a stream handle in its backward (and hash) ops
even for CPU tensors, which raises on a CPU-only torch. Its CPU kernels ignore the stream, so when
CUDA is unavailable the handle is replaced by 0 (the default stream).

spconv 2.3.8's CPU convolutions and pooling also give run-to-run different results (differences of 0.1 on
unit-scale features, forward and backward) when torch runs more than one intra-op thread; with one thread they
are deterministic and equal the official outputs. Its ops (rulebook generation, conv, pooling, their backward)
therefore run on one intra-op thread when their tensors are on the CPU; CUDA tensors are untouched.
"""
import functools

import torch

_patched = False
_threads_patched = False
# spconv.pytorch.ops functions that run CPU kernels (convs, pools and rulebooks, forward and backward).
_CPU_OPS = ("get_indice_pairs", "get_indice_pairs_implicit_gemm", "indice_conv", "indice_conv_backward",
            "implicit_gemm", "implicit_gemm_backward", "indice_maxpool", "indice_maxpool_backward",
            "indice_maxpool_implicit_gemm", "indice_maxpool_implicit_gemm_backward",
            "indice_avgpool_implicit_gemm", "indice_avgpool_implicit_gemm_backward")


def _cpu_stream() -> int:
    return 0


def _on_one_cpu_thread(fn):
    """``fn`` run with one intra-op thread unless its first tensor argument is on a GPU."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        threads = torch.get_num_threads()
        if threads == 1 or (first is not None and first.device.type != "cpu"):
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return run


def import_spconv():
    """Returns ``spconv.pytorch`` with the CPU stream fix and the one-thread CPU ops applied (idempotent)."""
    global _patched, _threads_patched
    import spconv.pytorch as spconv

    if not _threads_patched:
        from spconv.pytorch import ops as spconv_ops

        # spconv's conv, pool and functional modules call these through the module attribute.
        for name in _CPU_OPS:
            setattr(spconv_ops, name, _on_one_cpu_thread(getattr(spconv_ops, name)))
        _threads_patched = True
    if not _patched and not torch.cuda.is_available():
        from spconv.pytorch import hash as spconv_hash
        from spconv.pytorch import ops as spconv_ops

        # Both modules imported the function by name, so each module's binding is replaced.
        spconv_ops.get_current_stream = _cpu_stream
        spconv_hash.get_current_stream = _cpu_stream
        _patched = True
    return spconv
