"""Window partitioners of sparse voxel transformers, as compiled ops (``torch.ops.pc3d.*``).

* :func:`flat_window_partition` — FlatFormer: voxels sorted by snake window order and snake in-window
  order, each sample cut into groups of exactly ``group_size`` (a short last group filled by the official
  rule, or by repeating its own voxels).
* :func:`rotated_set_partition` — DSVT: every window split into ``ceil(n / set_size)`` sets, in a
  y-major and an x-major in-window order, with key-padding masks.
* :func:`sort_by_window` + :func:`scattered_linear_attention` — ScatterFormer: voxels sorted by window
  (no padding) and ReLU linear attention inside each window, with a compiled backward.

The window and sort keys are those of the papers' official code (``csrc/partition/partition_keys.h``).
Shapes follow pc3d's voxel order everywhere: coords are ``(b, z, y, x)``, ``sparse_shape`` is ``(D, H, W)`` =
(z, y, x) extents, and window shapes and shifts are given in the same (z, y, x) order — i.e. reversed with
respect to the papers' (x, y, z).
"""
from typing import NamedTuple, Sequence, Tuple, Union

import torch

from ._library import load_library

load_library()
from . import _partition_meta  # noqa: E402,F401  (fake kernels and autograd of the ops below)

# Overloads resolved once (skips the packet's overload lookup on every call).
_FLAT_OP = torch.ops.pc3d.flat_window_partition.default
_SETS_OP = torch.ops.pc3d.rotated_set_partition.default

IntOrSeq = Union[int, Sequence[int]]


class FlatWindowGroups(NamedTuple):
    """Result of :func:`flat_window_partition` (``Ng`` groups of ``G`` slots, ``V`` voxels).

    indices: (Ng, G) int64 voxel index of every slot; ``feats[indices]`` gives the grouped features.
    inverse: (V,) int64 position of each voxel in the flattened ``(Ng * G)`` slot layout, at its one
        non-padding slot; ``grouped.reshape(Ng * G, C)[inverse]`` scatters group results back.
    group_batch: (Ng,) int64 sample index of every group (groups never mix samples).
    padding_mask: (Ng, G) bool, True where a slot repeats a voxel of its own group to fill a sample's last
        group and must be ignored as a key (``last_group='repeat'``, or a sample of fewer than G voxels);
        the fill slots of ``last_group='previous'`` are real keys and stay False.
    """

    indices: torch.Tensor
    inverse: torch.Tensor
    group_batch: torch.Tensor
    padding_mask: torch.Tensor


class RotatedSets(NamedTuple):
    """Result of :func:`rotated_set_partition` (``Ns`` sets of ``tau`` slots).

    indices: (2, Ns, tau) int64 voxel index per slot; [0] uses the y-major in-window order, [1] x-major.
    padding_mask: (2, Ns, tau) bool, True where slot j repeats slot j - 1 (key padding).
    set_window: (Ns,) int64 global window id of each set (``b*Mx*My*Mz + wx*My*Mz + wy*Mz + wz``).
    set_batch: (Ns,) int64 sample index of each set.
    """

    indices: torch.Tensor
    padding_mask: torch.Tensor
    set_window: torch.Tensor
    set_batch: torch.Tensor


class WindowSegments(NamedTuple):
    """Result of :func:`sort_by_window` (``V`` voxels in ``Nw`` non-empty windows).

    order: (V,) int64 permutation; ``coords[order]`` is grouped by ascending window id, input order
        kept inside a window (stable).
    offsets: (Nw,) int64 first row of each window in the sorted rows.
    counts: (Nw,) int64 voxels per window (all >= 1).
    window_ids: (Nw,) int64 global window id (same formula as :class:`RotatedSets`), ascending.
    """

    order: torch.Tensor
    offsets: torch.Tensor
    counts: torch.Tensor
    window_ids: torch.Tensor


def _shape(value: IntOrSeq, n: int, name: str, allow_zero: bool = False) -> Tuple[int, ...]:
    """``value`` as an n-tuple of ints (an int is repeated); ValueError naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
    vals = (int(value),) * n if isinstance(value, int) else tuple(value)
    if len(vals) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
    if any(v < 0 or (v == 0 and not allow_zero) for v in vals):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {vals}")
    return vals


def _sparse_shape(sparse_shape: Sequence[int]) -> Tuple[int, int, int]:
    """(D, H, W) from ``(D, H, W)`` or ``(H, W)`` (D = 1)."""
    vals = tuple(sparse_shape) if not isinstance(sparse_shape, int) else (sparse_shape,)
    if len(vals) == 2:
        vals = (1,) + vals
    return _shape(vals, 3, "sparse_shape")


def _check_coords(coords: torch.Tensor) -> None:
    """Validate the layout of ``coords`` (V, 4) int32 [b, z, y, x]. The kernels check every row
    against the grid in their first pass and raise ValueError naming the offending row."""
    if not isinstance(coords, torch.Tensor):
        raise ValueError(f"coords must be a torch.Tensor, got {type(coords).__name__}")
    if coords.dim() != 2 or coords.shape[1] != 4:
        raise ValueError(f"coords must have shape (V, 4) [b, z, y, x], got {tuple(coords.shape)}")
    if coords.dtype != torch.int32:
        raise ValueError(f"coords must be int32, got {coords.dtype}")


def _check_key_range(coords: torch.Tensor, per_sample: int, what: str) -> None:
    """The composite sort key ``b * per_sample + key`` must fit in 62 bits. Any int32 batch index
    fits when ``per_sample < 2**31`` (the callers skip the check then); only larger grids need the
    actual largest batch index."""
    if per_sample < 2**31 or coords.shape[0] == 0:
        return
    bmax = int(coords[:, 0].max())
    if (bmax + 1) * per_sample >= 2**62:
        raise ValueError(f"{what} with {bmax + 1} samples overflows the 64-bit sort key")


def _typed_key(value):
    """Cache key of one argument that tells apart equal values of different types (``True`` vs ``1``,
    ``2.0`` vs ``2``), also inside sequences, so a cached parse never skips a validation."""
    if isinstance(value, (list, tuple)):
        return tuple(value), tuple(map(type, value))
    return value, type(value)


def _cached_parser(fn):
    """Memoise a pure argument parser (errors are raised, never cached). Caching keeps the face's cost
    per call at a few microseconds, which matters next to kernels that take ~0.1 ms on a frame."""
    cache = {}

    def parse(*args):
        key = tuple(map(_typed_key, args))
        try:
            return cache[key]
        except KeyError:
            pass
        except TypeError:  # unhashable content: parse without caching (it will raise or succeed)
            return fn(*args)
        out = fn(*args)
        if len(cache) < 256:
            cache[key] = out
        return out

    return parse


# ``last_group`` names of flat_window_partition -> the op's int code (csrc/partition/partition_keys.h).
FLAT_LAST_GROUP = {"previous": 0, "repeat": 1}


@_cached_parser
def _flat_args(sparse_shape, window_shape, group_size, axis, shift, last_group):
    """Validated op arguments of :func:`flat_window_partition` and the key-range check it needs (None
    when no batch index can overflow the sort key)."""
    dhw = _sparse_shape(sparse_shape)
    wy, wx = _shape(window_shape, 2, "window_shape")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    if not isinstance(shift, bool):
        raise ValueError(f"shift must be a bool, got {shift!r}")
    if not isinstance(last_group, str) or last_group not in FLAT_LAST_GROUP:
        raise ValueError(f"last_group must be one of {tuple(FLAT_LAST_GROUP)}, got {last_group!r}")
    # Per-sample key bound: key_x < n1 * (ceil(Sy/wy) + 2) * n2 * m2, key_y < m1 * (ceil(Sx/wx) + 2) * n2 * m2.
    cx, cy = -(-dhw[2] // wx), -(-dhw[1] // wy)
    per_sample = max(2 * (cx + 1) * (cy + 2), 2 * (cy + 1) * (cx + 2)) * 4 * wx * wy
    key_span = None if per_sample < 2**31 else (per_sample, f"sparse_shape {dhw} with window_shape {(wy, wx)}")
    return (dhw[2], dhw[1], dhw[0]), (wx, wy), 0 if axis == "x" else 1, FLAT_LAST_GROUP[last_group], key_span


def flat_window_partition(coords: torch.Tensor, sparse_shape: Sequence[int], window_shape: IntOrSeq,
                          group_size: int, axis: str = "x", shift: bool = False,
                          last_group: str = "previous") -> FlatWindowGroups:
    """FlatFormer's flattened-window groups.

    Voxels are sorted stably by ``(b, key_axis)`` with the snake keys on ``(x, y)`` (z is ignored;
    ``shift`` adds ``(wx // 2, wy // 2)``), then each sample is cut into groups of exactly ``group_size``
    consecutive voxels; samples without voxels make no group. Sorting on ``(b, key)`` equals the official
    ``key + b*Sx*Sy*10`` wherever that term separates samples (any realistic grid, e.g. 468 x 468 with
    13 x 13 windows) and, unlike it, never mixes samples on tiny grids.

    A sample's last group, when it holds only ``r < G`` voxels, is filled up to G slots:

    * ``last_group='previous'`` (the official FlatFormer): slot ``j >= r`` holds the voxel of slot ``j`` of
      the sample's previous group, so the group is the sample's last G voxels in the order (last r, then
      the G - r before them). These slots are unmasked: the official attention sees them as ordinary keys
      (their own outputs are dropped, ``inverse`` points at each voxel's slot in its own group).
    * ``last_group='repeat'``: slot ``j >= r`` repeats slot ``j % r`` of the group itself and is masked
      (``padding_mask``), so the group attends over its r voxels only.

    A sample of fewer than G voxels (one group, no previous one) is filled as in ``'repeat'`` in both
    modes (the official code has no defined result there).

    Args:
        coords: (V, 4) int32 voxel coords [b, z, y, x].
        sparse_shape: (D, H, W) or (H, W) grid extents.
        window_shape: (wy, wx) window size in voxels, or an int for a square window.
        group_size: G, voxels per group (>= 1).
        axis: 'x' (key_x: x-major snake) or 'y' (key_y: y-major snake).
        shift: shift windows by half a window.
        last_group: 'previous' or 'repeat', how a short last group is filled (above).

    Returns:
        :class:`FlatWindowGroups`.
    """
    _check_coords(coords)
    sxyz, wxy, axis_i, fill, key_span = _flat_args(sparse_shape, window_shape, group_size, axis, shift, last_group)
    if key_span is not None:
        _check_key_range(coords, *key_span)
    out = _FLAT_OP(coords, sxyz, wxy, group_size, axis_i, shift, fill)
    return FlatWindowGroups(*out)


def _window_args(coords, sparse_shape, window_shape, shift):
    """Validated (x, y, z) tuples for the window ops and the number of windows per sample."""
    _check_coords(coords)
    sxyz, wxyz, shxyz, per_sample, key_span = _window_args_cached(sparse_shape, window_shape, shift)
    if key_span is not None:
        _check_key_range(coords, *key_span)
    return sxyz, wxyz, shxyz, per_sample


@_cached_parser
def _window_args_cached(sparse_shape, window_shape, shift):
    dhw = _sparse_shape(sparse_shape)
    win = tuple(window_shape) if not isinstance(window_shape, int) else (window_shape,)
    if len(win) == 2:
        win = (dhw[0],) + tuple(win)  # a 2D window spans the whole z extent
    wz, wy, wx = _shape(win, 3, "window_shape")
    if isinstance(shift, bool):
        # Half-window shift; none along z when the window spans all of z (as the official DSVT code does).
        sz, sy, sx = (0 if wz == dhw[0] else wz // 2, wy // 2, wx // 2) if shift else (0, 0, 0)
    else:
        sz, sy, sx = _shape(shift, 3, "shift", allow_zero=True)
    if sz > wz or sy > wy or sx > wx:
        raise ValueError(f"shift (dz, dy, dx) = {(sz, sy, sx)} must not exceed window_shape {(wz, wy, wx)}")
    m = [-(-s // w) + 1 for s, w in zip(dhw, (wz, wy, wx))]
    per_sample = m[0] * m[1] * m[2]
    span = per_sample * wz * wy * wx
    key_span = None if span < 2**31 else (span, f"sparse_shape {dhw} with window_shape {(wz, wy, wx)}")
    return (dhw[2], dhw[1], dhw[0]), (wx, wy, wz), (sx, sy, sz), per_sample, key_span


def rotated_set_partition(coords: torch.Tensor, sparse_shape: Sequence[int], window_shape: IntOrSeq,
                          set_size: int, shift: Union[bool, Sequence[int]] = False) -> RotatedSets:
    """DSVT's rotated sets.

    ``c' = c + shift``; window ``c' // W``; a window with n voxels gets ``S = ceil(n / set_size)``
    sets; slot j of set k holds the voxel of in-window rank ``floor((k*tau + j) * n / (S*tau))`` where
    the rank orders the window's voxels by ``iy*Wx*Wz + ix*Wz + iz`` (order 0) or
    ``ix*Wy*Wz + iy*Wz + iz`` (order 1), ties by input index. Sets are numbered by window id, then k.
    Every voxel is in exactly one set per order at exactly one unmasked slot.

    Args:
        coords: (V, 4) int32 voxel coords [b, z, y, x].
        sparse_shape: (D, H, W) or (H, W) grid extents.
        window_shape: (Wz, Wy, Wx), or (Wy, Wx) meaning Wz = D, or an int for a 2D square window.
        set_size: tau, slots per set (>= 1).
        shift: (dz, dy, dx) with 0 <= shift <= window, or True for half a window (dz = 0 when Wz = D).

    Returns:
        :class:`RotatedSets`.
    """
    if isinstance(set_size, bool) or not isinstance(set_size, int) or set_size < 1:
        raise ValueError(f"set_size must be a positive int, got {set_size!r}")
    if isinstance(window_shape, int):
        window_shape = (window_shape, window_shape)
    sxyz, wxyz, shxyz, per_sample = _window_args(coords, sparse_shape, window_shape, shift)
    idx, mask, set_window = _SETS_OP(coords, sxyz, wxyz, shxyz, set_size)
    # window ids are non-negative: truncating division is the floor and the cheapest form
    return RotatedSets(idx, mask, set_window, set_window.div(per_sample, rounding_mode="trunc"))


def sort_by_window(coords: torch.Tensor, sparse_shape: Sequence[int], window_shape: IntOrSeq,
                   shift: Union[bool, Sequence[int]] = False) -> WindowSegments:
    """Voxels grouped by window for :func:`scattered_linear_attention` (windows as in DSVT).

    Args:
        coords: (V, 4) int32 voxel coords [b, z, y, x].
        sparse_shape: (D, H, W) or (H, W) grid extents.
        window_shape: (Wz, Wy, Wx), or (Wy, Wx) meaning Wz = D, or an int for a 2D square window.
        shift: (dz, dy, dx) with 0 <= shift <= window, or True for half a window.

    Returns:
        :class:`WindowSegments`; ``feats[order]`` is the input layout of the attention.
    """
    if isinstance(window_shape, int):
        window_shape = (window_shape, window_shape)
    sxyz, wxyz, shxyz, _ = _window_args(coords, sparse_shape, window_shape, shift)
    return WindowSegments(*torch.ops.pc3d.sort_by_window(coords, sxyz, wxyz, shxyz))


def scattered_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offsets: torch.Tensor,
                               counts: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """ReLU linear attention inside each window of window-sorted rows (ScatterFormer).

    Window w owns rows ``offsets[w] : offsets[w] + counts[w]``; per window and head
    ``KV = sum_i relu(k_i)^T v_i`` (d x dv) and ``s = sum_i relu(k_i)`` (d), and
    ``out_i = relu(q_i) KV / (relu(q_i) . s + eps)``. Rows outside every window give 0. Differentiable
    in q, k, v (compiled backward, deterministic on CPU). Memory: O(N*h*d + W*h*d*dv).

    Args:
        q: (N, h, d) float32/float64 queries, rows sorted by window.
        k: (N, h, d) keys, same dtype and device.
        v: (N, h, dv) values.
        offsets: (W,) int64 first row per window, windows disjoint and ascending.
        counts: (W,) int64 rows per window.
        eps: added to the denominator (default 1e-6); must be > 0.

    Returns:
        (N, h, dv) attention output.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 3:
            raise ValueError(f"{name} must be a (N, h, d) tensor, got {getattr(t, 'shape', type(t).__name__)}")
        if t.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{name} must be float32 or float64, got {t.dtype}")
        if t.dtype != q.dtype or t.device != q.device:
            raise ValueError(f"{name} must match q's dtype/device ({q.dtype}, {q.device}), got ({t.dtype}, {t.device})")
    if k.shape != q.shape:
        raise ValueError(f"k must have q's shape {tuple(q.shape)}, got {tuple(k.shape)}")
    if v.shape[:2] != q.shape[:2]:
        raise ValueError(f"v must have shape (N, h, dv) = ({q.shape[0]}, {q.shape[1]}, dv), got {tuple(v.shape)}")
    for name, t in (("offsets", offsets), ("counts", counts)):
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.dtype != torch.int64:
            raise ValueError(f"{name} must be a (W,) int64 tensor, got {getattr(t, 'dtype', type(t).__name__)} "
                             f"{tuple(getattr(t, 'shape', ()))}")
        if t.device != q.device:
            raise ValueError(f"{name} must be on q's device {q.device}, got {t.device}")
    if offsets.shape != counts.shape:
        raise ValueError(f"offsets {tuple(offsets.shape)} and counts {tuple(counts.shape)} must have one shape")
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"eps must be a positive float, got {eps!r}")
    if offsets.numel():
        ends = offsets + counts
        if bool((offsets < 0).any()) or bool((counts < 0).any()) or int(ends.max()) > q.shape[0]:
            raise ValueError(f"offsets/counts must describe rows inside [0, N = {q.shape[0]})")
        if bool((offsets[1:] < ends[:-1]).any()):
            raise ValueError("windows (offsets, counts) must be ascending and disjoint")
    return torch.ops.pc3d.scattered_linear_attention(q, k, v, offsets, counts, float(eps))[0]
