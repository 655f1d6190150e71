"""Hypothesis fuzzing of every compiled op (``torch.ops.pc3d.*``).

Two layers per op:
- the raw kernel with garbage arguments (shapes including 0 and wrong ranks, wrong dtypes, the meta
  device, non-contiguous views, NaN/inf/huge/negative values, out-of-range ints): it returns or raises
  a Python exception, never crashes or hangs;
- the Python face with adversarial but well-formed inputs (NaN/inf, huge or negative coordinates,
  duplicates, unsorted rows, non-contiguous tensors, empty inputs): it matches the plain-PyTorch
  reference of ``tests/reference`` or raises ValueError with a message.
A registered op without a fuzzer here fails ``test_every_registered_op_has_a_fuzzer``.

Profiles: ``ci`` (default, 30 examples per op and layer) and ``long`` (``PC3D_FUZZ_PROFILE=long``,
1000 examples) for runs by hand. Sizes are bounded (<= a few hundred rows, <= 64 points per voxel,
<= 300 slots per group/set) so that a missing size check cannot exhaust the shared machine's memory.
"""
import os
import sys
from pathlib import Path

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis", reason="fuzzing needs hypothesis (requirements-test.txt)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pc3d.ops  # noqa: E402,F401  (loads the library)
from reference.boxes_ref import (boundary_distance_ref, first_box_ref, iou_3d_ref, iou_bev_ref, nms_ref,  # noqa: E402
                                 points_in_boxes_mask_ref)
from reference.partition_ref import (flat_window_ref, rotated_set_ref, scattered_linear_attention_ref,  # noqa: E402
                                     sort_by_window_ref)
from reference.voxelize_ref import voxelize_dynamic_ref, voxelize_hard_ref  # noqa: E402

_HC = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("pc3d-fuzz-ci", max_examples=30, deadline=None, suppress_health_check=_HC,
                          print_blob=True)
settings.register_profile("pc3d-fuzz-long", max_examples=1000, deadline=None, suppress_health_check=_HC,
                          print_blob=True)
PROFILE = os.environ.get("PC3D_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"PC3D_FUZZ_PROFILE must be 'ci' or 'long', got {PROFILE!r}")
FUZZ = settings.get_profile(f"pc3d-fuzz-{PROFILE}")

# What a kernel may raise on bad input (c10::Error -> RuntimeError, c10::ValueError -> ValueError, ...).
CLEAN_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError)
DTYPES = [torch.float32, torch.float64, torch.int32, torch.int64, torch.bool, torch.float16]
SPECIAL = [float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 3.4e38, 0.0, -0.0, 1e-30]


# ---------------------------------------------------------------- strategies
@st.composite
def tensors(draw, shape, dtype=torch.float32, scale=10.0, garbage=True, low=None, high=None):
    """A tensor of ``shape``: mostly ``dtype``; with ``garbage`` sometimes another dtype or the meta device.
    Floats: N(0, scale) with NaN/inf/huge values mixed in; ints: uniform in [low, high). Sometimes a
    non-contiguous view (every other column of a wider tensor, or a transposed copy)."""
    if garbage and draw(st.integers(0, 9)) == 0:
        dtype = draw(st.sampled_from(DTYPES))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    layout = draw(st.sampled_from(["plain", "plain", "strided", "transposed"])) if len(shape) >= 1 else "plain"
    full = list(shape)
    if layout == "strided":
        full[-1] = 2 * full[-1]
    if dtype.is_floating_point:
        t = torch.randn(full, generator=gen, dtype=torch.float64) * draw(st.sampled_from([scale, 1e-3, 1e6]))
        if t.numel() and draw(st.booleans()):
            n_bad = draw(st.integers(1, max(1, t.numel() // 4)))
            pos = torch.randint(0, t.numel(), (n_bad,), generator=gen)
            vals = torch.tensor([draw(st.sampled_from(SPECIAL)) for _ in range(n_bad)], dtype=torch.float64)
            t.view(-1)[pos] = vals
        t = t.to(dtype)
    elif dtype == torch.bool:
        t = torch.rand(full, generator=gen) < 0.5
    else:
        lo = -5 if low is None else low
        hi = 50 if high is None else high
        t = torch.randint(lo, hi, full, generator=gen, dtype=torch.int64).to(dtype)
    if layout == "strided":
        t = t[..., ::2]
    elif layout == "transposed" and t.dim() == 2:
        t = t.t().contiguous().t()
    if garbage and draw(st.integers(0, 11)) == 0:
        t = t.to("meta")
    return t


def dim(lo=0, hi=40):
    return st.integers(lo, hi)


def wrong_or(n):
    """A row width: mostly ``n``, sometimes a wrong one (including 0)."""
    return st.one_of(st.just(n), st.just(n), st.just(n), st.integers(0, n + 2))


def ints(n, lo=-3, hi=64, big=True):
    """A list of mostly ``n`` ints, including 0, negatives and (with ``big``) values near int32/int64 limits."""
    values = st.integers(lo, hi) | (st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**40, -(2**31)]) if big else st.nothing())
    return st.lists(values, min_size=n, max_size=n) | st.lists(values, min_size=0, max_size=n + 2)


def floats_list(n):
    f = st.floats(-100, 100) | st.sampled_from([0.0, -1.0, 1e-9, 1e30, float("nan"), float("inf")])
    return st.lists(f, min_size=n, max_size=n) | st.lists(f, min_size=0, max_size=n + 2)


def valid_boxes(n):
    """(n, 7) float32 boxes: centres over +-1e4 m (sometimes huge), sizes 1e-3..20 m, any heading,
    sometimes duplicated rows."""
    @st.composite
    def build(draw):
        gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
        far = draw(st.sampled_from([5.0, 5.0, 1e4]))
        b = torch.cat([torch.randn(n, 3, generator=gen) * far, torch.rand(n, 3, generator=gen) * 6 + 0.05,
                       (torch.rand(n, 1, generator=gen) * 2 - 1) * 3.14159], 1)
        if n > 1 and draw(st.booleans()):
            b[1::2] = b[0]  # duplicates
        return b.float()
    return build()


# ---------------------------------------------------------------- raw kernels: garbage in, no crash
@st.composite
def raw_args(draw, op):
    """Garbage arguments for ``torch.ops.pc3d.<op>`` following its schema."""
    n, m = draw(dim()), draw(dim())
    if op in ("iou_bev_rotated", "iou_3d_rotated"):
        return (draw(tensors((n, draw(wrong_or(7))))), draw(tensors((m, draw(wrong_or(7))))))
    if op in ("points_in_boxes", "points_in_boxes_mask"):
        return (draw(tensors((n, draw(wrong_or(3))), scale=20)), draw(tensors((m, draw(wrong_or(7))))))
    if op == "nms_bev_rotated":
        scores_len = draw(st.sampled_from([n, n, m]))
        thr = draw(st.sampled_from([0.5, 0.0, 1.0, -1.0, 2.0, float("nan"), float("inf")]))
        return (draw(tensors((n, draw(wrong_or(7))))), draw(tensors((scores_len,))), thr)
    if op in ("voxelize_hard", "voxelize_dynamic"):
        points = draw(tensors((n, draw(wrong_or(5))), scale=30))
        batch = draw(st.none() | tensors((draw(st.sampled_from([n, n, m])),), dtype=torch.int64, low=-2, high=4))
        common = (points, batch, draw(floats_list(3)), draw(floats_list(6)), draw(ints(3, 0, 300)),
                  draw(st.integers(-2, 5) | st.sampled_from([2**31, 2**62])))
        if op == "voxelize_hard":
            return common + (draw(st.integers(-2, 64)), draw(st.integers(-2, 5000) | st.just(2**40)))
        return common
    coords = lambda v: tensors((v, draw(wrong_or(4))), dtype=torch.int32, low=-3, high=80)  # noqa: E731
    if op == "flat_window_partition":
        return (draw(coords(n)), draw(ints(3)), draw(ints(2)), draw(st.integers(-2, 300)),
                draw(st.integers(-1, 2)), draw(st.booleans()), draw(st.integers(-1, 2)))
    if op == "rotated_set_partition":
        return (draw(coords(n)), draw(ints(3)), draw(ints(3)), draw(ints(3, -2, 8)), draw(st.integers(-2, 300)))
    if op == "sort_by_window":
        return (draw(coords(n)), draw(ints(3)), draw(ints(3)), draw(ints(3, -2, 8)))
    h, d, dv, w = draw(st.integers(0, 3)), draw(st.integers(0, 5)), draw(st.integers(0, 5)), draw(st.integers(0, 6))
    qkv = (draw(tensors((n, h, d))), draw(tensors((draw(st.sampled_from([n, n, m])), h, d))),
           draw(tensors((n, h, draw(st.sampled_from([dv, 0]))))))
    seg = (draw(tensors((w,), dtype=torch.int64, low=-3, high=n + 3)),
           draw(tensors((draw(st.sampled_from([w, w, m])),), dtype=torch.int64, low=-3, high=n + 3)))
    eps = draw(st.sampled_from([1e-6, 0.0, -1.0, float("nan")]))
    if op == "scattered_linear_attention":
        return qkv + seg + (eps,)
    if op == "scattered_linear_attention_backward":
        grad_out = draw(tensors((n, h, dv)))
        gkv = draw(st.none() | tensors((w, h, d, dv)))
        gks = draw(st.none() | tensors((w, h, d)))
        return (grad_out, gkv, gks) + qkv + seg + (draw(tensors((w, h, d, dv))), draw(tensors((w, h, d))), eps)
    raise KeyError(op)


RAW_OPS = ["iou_bev_rotated", "iou_3d_rotated", "points_in_boxes", "points_in_boxes_mask", "nms_bev_rotated",
           "voxelize_hard", "voxelize_dynamic", "flat_window_partition", "rotated_set_partition", "sort_by_window",
           "scattered_linear_attention", "scattered_linear_attention_backward"]


def registered_ops():
    return sorted({s.name.split("::", 1)[1].split(".")[0] for s in torch._C._jit_get_all_schemas()
                   if s.name.startswith("pc3d::")})


def test_every_registered_op_has_a_fuzzer():
    ops = registered_ops()
    assert ops, "no pc3d:: schemas registered: is the extension built?"
    missing = sorted(set(ops) - set(RAW_OPS))
    assert not missing, f"compiled ops without a fuzz strategy in tests/test_fuzz_ops.py: {missing}"
    # Every op's Python face (or, for the backward, autograd through the face) is fuzzed against a reference.
    face_covered = set(FACE_FUZZERS) | {"points_in_boxes_mask", "scattered_linear_attention_backward"}
    assert not set(ops) - face_covered, f"ops without a face fuzzer: {sorted(set(ops) - face_covered)}"


def _call_raw(op, args):
    try:
        out = getattr(torch.ops.pc3d, op)(*args)
    except CLEAN_ERRORS as e:
        assert str(e).strip(), f"{op} raised {type(e).__name__} without a message"
        return None
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for t in outs:  # outputs are well-formed tensors (reading them must not crash either)
        assert isinstance(t, torch.Tensor)
        if t.device.type == "cpu" and t.numel():
            t.sum() if t.dtype != torch.bool else t.any()
    return out


@pytest.mark.parametrize("op", RAW_OPS)
def test_raw_kernel_survives_garbage(op):
    @FUZZ
    @given(args=raw_args(op))
    def run(args):
        _call_raw(op, args)

    run()


# ---------------------------------------------------------------- faces: adversarial input, reference or ValueError
def _face_or_value_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        assert len(str(e)) > 10, f"unclear error message {e!r}"
        return None


@st.composite
def adversarial_points(draw, n, cols=3, scale=20.0):
    """(n, cols) float32 points with NaN/inf, huge and negative coordinates and duplicated rows."""
    p = draw(tensors((n, cols), scale=scale, garbage=False))
    if n > 1 and draw(st.booleans()):
        p[1::3] = p[0]
    return p


@FUZZ
@given(data=st.data())
def fuzz_points_in_boxes(data):
    n, m = data.draw(dim(0, 30)), data.draw(dim(0, 6))
    points, boxes = data.draw(adversarial_points(n)), data.draw(valid_boxes(m))
    mask = _face_or_value_error(pc3d.ops.points_in_boxes_mask, points, boxes)
    first = _face_or_value_error(pc3d.ops.points_in_boxes, points, boxes)
    if mask is None:
        return
    ref = points_in_boxes_mask_ref(points, boxes)
    clear = boundary_distance_ref(points, boxes) > 1e-3 * (1 + points.double().abs().max(dim=1).values[:, None])
    clear &= torch.isfinite(points).all(dim=1, keepdim=True)
    assert torch.equal(mask[clear], ref[clear])
    assert not mask[~torch.isfinite(points).all(dim=1)].any()  # NaN/inf points are in no box
    rows = clear.all(dim=1)
    assert torch.equal(first[rows], first_box_ref(ref)[rows])


@FUZZ
@given(data=st.data())
def fuzz_iou(data):
    n, m = data.draw(dim(0, 5)), data.draw(dim(0, 5))
    a, b = data.draw(valid_boxes(n)), data.draw(valid_boxes(m))
    if data.draw(st.booleans()) and n and m:
        b[0] = a[0]  # identical boxes: IoU 1
    bev = _face_or_value_error(pc3d.ops.iou_bev_rotated, a, b)
    iou3d = _face_or_value_error(pc3d.ops.iou_3d_rotated, a, b)
    torch.testing.assert_close(bev, iou_bev_ref(a, b).float(), atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(iou3d, iou_3d_ref(a, b).float(), atol=2e-4, rtol=1e-3)
    assert ((bev >= 0) & (bev <= 1 + 1e-6)).all()


@FUZZ
@given(data=st.data())
def fuzz_nms(data):
    n = data.draw(dim(0, 12))
    boxes = data.draw(valid_boxes(n))
    boxes[:, :2] = boxes[:, :2] / 1e3 if data.draw(st.booleans()) else boxes[:, :2]  # crowded: many overlaps
    scores = data.draw(tensors((n,), scale=1.0, garbage=False))
    if data.draw(st.booleans()):
        scores = torch.round(scores * 2) / 2  # ties: order must be stable
    thr = data.draw(st.sampled_from([0.0, 0.1, 0.5, 0.99, 1.0]))
    keep = _face_or_value_error(pc3d.ops.nms_bev_rotated, boxes, scores, thr)
    if keep is None:
        assert not torch.isfinite(scores).all(), "finite scores and valid boxes must not be rejected"
        return
    iou = pc3d.ops.iou_bev_rotated(boxes, boxes)
    assert torch.equal(keep, nms_ref(boxes, scores, thr, iou=iou))


@FUZZ
@given(data=st.data())
def fuzz_voxelize(data):
    n, batch = data.draw(dim(0, 80)), data.draw(st.integers(1, 3))
    points = data.draw(adversarial_points(n, cols=data.draw(st.integers(3, 5)), scale=data.draw(st.sampled_from([5.0, 1e5]))))
    bidx = torch.randint(0, batch, (n,), generator=torch.Generator().manual_seed(n)) if batch > 1 else None
    vs = data.draw(st.sampled_from([[1.0, 1.0, 2.0], [0.5, 0.7, 8.0], [3.0, 3.0, 3.0]]))
    rng = data.draw(st.sampled_from([[-8.0, -8.0, -3.0, 8.0, 8.0, 3.0], [-1e4, -1e4, -5.0, 1e4, 1e4, 5.0]]))
    p, mv = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 40))
    hard = _face_or_value_error(pc3d.ops.voxelize_hard, points, vs, rng, p, mv, batch_idx=bidx)
    dyn = _face_or_value_error(pc3d.ops.voxelize_dynamic, points, vs, rng, batch_idx=bidx)
    if hard is not None:
        for got, want in zip(hard, voxelize_hard_ref(points, vs, rng, p, mv, batch_idx=bidx)):
            # exact, NaN features (NaN only in non-coordinate columns of kept points) compare equal
            torch.testing.assert_close(got, want.to(got.dtype), atol=0, rtol=0, equal_nan=True)
    if dyn is not None:
        for got, want in zip(dyn, voxelize_dynamic_ref(points, vs, rng, batch_idx=bidx)):
            assert torch.equal(got, want.to(got.dtype))


@st.composite
def voxel_coords(draw, dhw):
    """(V, 4) int32 coords inside ``dhw``, unsorted, sometimes with duplicate rows, batch 0..2."""
    n = draw(dim(0, 60))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    D, H, W = dhw
    c = torch.stack([torch.randint(0, 3, (n,), generator=gen), torch.randint(0, D, (n,), generator=gen),
                     torch.randint(0, H, (n,), generator=gen), torch.randint(0, W, (n,), generator=gen)], 1)
    if n > 1 and draw(st.booleans()):
        c[1::2] = c[0]
    c = c.to(torch.int32)
    if draw(st.booleans()):  # non-contiguous rows
        c = torch.cat([c, c], 1)[:, :4]
    return c


@FUZZ
@given(data=st.data())
def fuzz_partitions(data):
    dhw = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 50)), data.draw(st.integers(1, 50)))
    coords = data.draw(voxel_coords(dhw))
    win3 = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12)))
    shift = tuple(data.draw(st.integers(0, w)) for w in win3)
    got = _face_or_value_error(pc3d.ops.sort_by_window, coords, dhw, win3, shift)
    if got is not None:
        for g, w in zip(got, sort_by_window_ref(coords, dhw, win3, shift)):
            assert torch.equal(g, w)
    tau = data.draw(st.integers(1, 40))
    got = _face_or_value_error(pc3d.ops.rotated_set_partition, coords, dhw, win3, tau, shift)
    if got is not None:
        ref = rotated_set_ref(coords, dhw, win3, tau, shift)
        assert torch.equal(got.indices, ref[0]) and torch.equal(got.padding_mask, ref[1])
        assert torch.equal(got.set_window, ref[2])
    g, axis, sh = data.draw(st.integers(1, 40)), data.draw(st.sampled_from("xy")), data.draw(st.booleans())
    last_group = data.draw(st.sampled_from(["previous", "repeat"]))
    got = _face_or_value_error(pc3d.ops.flat_window_partition, coords, dhw, win3[1:], g, axis, sh, last_group)
    if got is not None:
        for a, b in zip(got, flat_window_ref(coords, dhw, win3[1:], g, axis, sh, last_group)):
            assert torch.equal(a, b)


@FUZZ
@given(data=st.data())
def fuzz_sla(data):
    n, h, d, dv = data.draw(dim(0, 30)), data.draw(st.integers(1, 2)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    q, k, v = (data.draw(tensors(s, dtype=dtype, scale=1.0, garbage=False)) for s in ((n, h, d), (n, h, d), (n, h, dv)))
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=5)))
    bounds = [0] + cuts + [n]
    offsets = torch.tensor(bounds[:-1], dtype=torch.int64)
    counts = torch.tensor([b - a for a, b in zip(bounds[:-1], bounds[1:])], dtype=torch.int64)
    out = _face_or_value_error(pc3d.ops.scattered_linear_attention, q, k, v, offsets, counts)
    if out is None:
        return
    ref = scattered_linear_attention_ref(q, k, v, offsets, counts)
    finite = torch.isfinite(ref)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(out[finite], ref[finite], atol=tol, rtol=tol)
    if all((t.abs() < 1e6).all() for t in (q, k, v)):  # no NaN/inf, no overflow to inf inside
        assert torch.equal(torch.isfinite(out), finite)
    # With NaN/inf inputs the kernel may differ from the reference only where the reference is not
    # finite: it skips rows whose ReLU feature is 0 (0 * NaN is NaN in the reference's outer products).
    if dtype == torch.float64 and finite.all() and torch.isfinite(q).all() and torch.isfinite(k).all() \
            and torch.isfinite(v).all() and (q.abs().max() if n else 0) < 1e3 and (k.abs().max() if n else 0) < 1e3:
        # The compiled backward (scattered_linear_attention_backward) against autograd through the reference.
        leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
        ref_leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
        w = torch.randn(n, h, dv, dtype=dtype, generator=torch.Generator().manual_seed(1))
        (pc3d.ops.scattered_linear_attention(*leaves, offsets, counts) * w).sum().backward()
        (scattered_linear_attention_ref(*ref_leaves, offsets, counts) * w).sum().backward()
        for a, b in zip(leaves, ref_leaves):
            torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)


FACE_FUZZERS = {"points_in_boxes": fuzz_points_in_boxes, "iou_bev_rotated": fuzz_iou, "iou_3d_rotated": fuzz_iou,
                "nms_bev_rotated": fuzz_nms, "voxelize_hard": fuzz_voxelize, "voxelize_dynamic": fuzz_voxelize,
                "flat_window_partition": fuzz_partitions, "rotated_set_partition": fuzz_partitions,
                "sort_by_window": fuzz_partitions, "scattered_linear_attention": fuzz_sla}


@pytest.mark.parametrize("name", ["points_in_boxes", "iou", "nms", "voxelize", "partitions", "sla"])
def test_face_matches_reference_or_raises_value_error(name):
    {"points_in_boxes": fuzz_points_in_boxes, "iou": fuzz_iou, "nms": fuzz_nms, "voxelize": fuzz_voxelize,
     "partitions": fuzz_partitions, "sla": fuzz_sla}[name]()
