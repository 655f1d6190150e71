"""pc3d box ops vs plain-Python/PyTorch references (tests/reference/boxes_ref.py) and hand-computed cases."""
import math

import pytest
import torch

from pc3d.ops import iou_3d_rotated, iou_bev_rotated, nms_bev_rotated, points_in_boxes, points_in_boxes_mask
from reference import boxes_ref as ref

PI = math.pi


def box(x=0.0, y=0.0, z=0.0, dx=1.0, dy=1.0, dz=1.0, h=0.0):
    return [x, y, z, dx, dy, dz, h]


def T(rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype).reshape(-1, 7)


def random_boxes(n, gen, spread=6.0, dtype=torch.float32):
    """Boxes crowded into a small area so that many pairs overlap, with sizes from 0.2 to 5 m."""
    centre = (torch.rand(n, 3, generator=gen, dtype=torch.float64) - 0.5) * spread
    centre[:, 2] *= 0.3
    size = 0.2 + torch.rand(n, 3, generator=gen, dtype=torch.float64) * 4.8
    heading = (torch.rand(n, 1, generator=gen, dtype=torch.float64) * 2 - 1) * PI
    return torch.cat([centre, size, heading], dim=1).to(dtype)


# ---------------------------------------------------------------- BEV / 3D IoU: hand-computed cases
HAND_BEV = [
    ("identical", box(), box(), 1.0),
    ("unit squares offset by 0.5", box(), box(x=0.5), 1 / 3),
    ("offset in y by 0.5 under heading pi/2", box(h=PI / 2), box(y=0.5, h=PI / 2), 1 / 3),
    ("heading pi vs 0", box(dx=4, dy=2), box(dx=4, dy=2, h=PI), 1.0),
    ("heading -pi vs pi", box(dx=4, dy=2, h=-PI), box(dx=4, dy=2, h=PI), 1.0),
    ("heading pi/2 vs -pi/2", box(dx=4, dy=2, h=PI / 2), box(dx=4, dy=2, h=-PI / 2), 1.0),
    # square of side 2 and the same square turned 45 degrees: regular octagon of area 8(sqrt2 - 1)
    ("45 degrees, same centre", box(dx=2, dy=2), box(dx=2, dy=2, h=PI / 4), 1 / math.sqrt(2)),
    # diamond of side 1 (diagonal sqrt2) fully inside a 4x4 square: IoU = 1 / 16
    ("45 degrees inside", box(dx=4, dy=4), box(x=0.3, y=-0.2, h=PI / 4), 1 / 16),
    ("contained axis-aligned", box(dx=4, dy=4), box(dx=1, dy=2), 2 / 16),
    ("disjoint", box(), box(x=3.0), 0.0),
    ("touching edges", box(), box(x=1.0), 0.0),
    ("touching corner", box(), box(x=1.0, y=1.0), 0.0),
    ("diamond touching at a vertex", box(), box(x=0.5 + math.sqrt(0.5), h=PI / 4), 0.0),
    ("cross of 4x1 and 1x4", box(dx=4, dy=1), box(dx=1, dy=4), 1 / 7),
    ("cross by heading", box(dx=4, dy=1), box(dx=4, dy=1, h=PI / 2), 1 / 7),
    # 2x2 squares sharing one edge line, shifted by 1 along it: overlap 1x2 -> 2 / 6
    ("collinear edges, partial", box(dx=2, dy=2), box(x=1.0, dx=2, dy=2), 1 / 3),
    ("zero-size box", box(), box(dx=0.0, dy=0.0), 0.0),
    ("zero-width box", box(), box(dy=0.0), 0.0),
    ("both zero-size", box(dx=0, dy=0), box(dx=0, dy=0), 0.0),
    ("z is ignored in BEV", box(z=0.0), box(z=10.0), 1.0),
]


@pytest.mark.parametrize("name,a,b,expected", HAND_BEV, ids=[c[0] for c in HAND_BEV])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iou_bev_hand_cases(name, a, b, expected, dtype):
    got = iou_bev_rotated(T([a], dtype), T([b], dtype))
    assert got.dtype == dtype and got.shape == (1, 1)
    assert not torch.isnan(got).any()
    assert got.item() == pytest.approx(expected, abs=1e-6 if dtype == torch.float32 else 1e-12)
    # symmetric
    assert iou_bev_rotated(T([b], dtype), T([a], dtype)).item() == pytest.approx(expected, abs=1e-6)


HAND_3D = [
    ("identical", box(), box(), 1.0),
    ("z half overlap", box(), box(z=0.5), 1 / 3),
    ("z touching", box(), box(z=1.0), 0.0),
    ("z disjoint", box(), box(z=5.0), 0.0),
    ("z contained", box(dz=4), box(dz=1), 1 / 4),
    ("bev 1/3 and z half", box(), box(x=0.5, z=0.5), 0.25 / 1.75),
    ("heading pi", box(dx=4, dy=2, dz=1.5), box(dx=4, dy=2, dz=1.5, h=-PI), 1.0),
    ("45 degrees, z shifted", box(dx=2, dy=2, dz=2), box(dx=2, dy=2, dz=2, z=1, h=PI / 4),
     (8 * (math.sqrt(2) - 1)) / (16 - 8 * (math.sqrt(2) - 1))),
    ("zero height", box(), box(dz=0.0), 0.0),
    ("flat boxes, same plane", box(dz=0.0), box(dz=0.0), 0.0),
]


@pytest.mark.parametrize("name,a,b,expected", HAND_3D, ids=[c[0] for c in HAND_3D])
def test_iou_3d_hand_cases(name, a, b, expected):
    for dtype in (torch.float32, torch.float64):
        got = iou_3d_rotated(T([a], dtype), T([b], dtype))
        assert got.dtype == dtype and not torch.isnan(got).any()
        assert got.item() == pytest.approx(expected, abs=1e-6)


def test_iou_random_vs_reference():
    gen = torch.Generator().manual_seed(0)
    a = random_boxes(40, gen, dtype=torch.float64)
    b = random_boxes(35, gen, dtype=torch.float64)
    bev, bev_ref = iou_bev_rotated(a, b), ref.iou_bev_ref(a, b)
    assert (bev_ref > 0).float().mean() > 0.3  # the test exercises real overlaps
    torch.testing.assert_close(bev, bev_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(iou_3d_rotated(a, b), ref.iou_3d_ref(a, b), rtol=0, atol=1e-10)
    # float32 input: same float64 computation, rounded once at the end
    a32, b32 = a.float(), b.float()
    torch.testing.assert_close(iou_3d_rotated(a32, b32), ref.iou_3d_ref(a32, b32).float(), rtol=0, atol=1e-6)


def test_iou_adversarial_vs_reference():
    """Parallel, identical, collinear, contained, shared-corner, far-from-origin and tiny boxes."""
    rows = [
        box(), box(x=0.5), box(y=1.0), box(x=1.0, y=1.0), box(dx=3, dy=0.5, h=PI / 2),
        box(dx=2, dy=2, h=PI / 4), box(x=0.25, dx=0.5, dy=0.5, h=1e-9), box(x=0.5, dx=1, dy=1, h=PI),
        box(dx=1e-4, dy=1e-4), box(dx=1, dy=1e-7), box(x=1e-12, dx=1, dy=1),
        box(x=0.5 + math.sqrt(0.5), h=PI / 4), box(x=-0.5, y=-0.5, dx=1, dy=1, h=PI / 2),
        box(dx=4.0, dy=4.0, h=-PI / 4 + 1e-12),
    ]
    a = T(rows)
    torch.testing.assert_close(iou_bev_rotated(a, a), ref.iou_bev_ref(a, a), rtol=0, atol=1e-9)
    # Far from the origin (Waymo ranges reach 75 m): same result as near it.
    far = a.clone()
    far[:, 0] += 74.9
    far[:, 1] -= 63.2
    torch.testing.assert_close(iou_bev_rotated(far, far), iou_bev_rotated(a, a), rtol=0, atol=1e-9)


def test_iou_properties():
    gen = torch.Generator().manual_seed(1)
    a = random_boxes(60, gen, dtype=torch.float64)
    m = iou_bev_rotated(a, a)
    torch.testing.assert_close(m, m.T, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.diagonal(m), torch.ones(60, dtype=torch.float64), rtol=0, atol=1e-12)
    assert bool(((m >= 0) & (m <= 1)).all())
    m3 = iou_3d_rotated(a, a)
    assert bool((m3 <= m + 1e-12).all())  # union >= zo * (A + B - I), so 3D IoU <= BEV IoU
    # heading + pi and heading - 2 pi describe the same boxes
    flipped = a.clone()
    flipped[:, 6] += PI
    torch.testing.assert_close(iou_3d_rotated(a, flipped), m3, rtol=0, atol=1e-9)


@pytest.mark.parametrize("fn", [iou_bev_rotated, iou_3d_rotated])
def test_iou_empty(fn):
    a = torch.zeros(0, 7)
    b = T([box()], torch.float32)
    assert fn(a, b).shape == (0, 1)
    assert fn(b, a).shape == (1, 0)
    assert fn(a, a).shape == (0, 0) and fn(a, a).dtype == torch.float32


# ---------------------------------------------------------------- points in boxes
def _check_points_vs_ref(points, boxes):
    mask = points_in_boxes_mask(points, boxes)
    ref_mask = ref.points_in_boxes_mask_ref(points, boxes)
    assert mask.shape == (points.shape[0], boxes.shape[0]) and mask.dtype == torch.bool
    differ = mask != ref_mask
    # cos/sin may differ by an ulp between libm and torch: only points on a face may disagree.
    if differ.any():
        assert bool((ref.boundary_distance_ref(points, boxes)[differ] < 1e-9).all())
    first = points_in_boxes(points, boxes)
    assert first.dtype == torch.int64 and first.shape == (points.shape[0],)
    torch.testing.assert_close(first, ref.first_box_ref(mask), rtol=0, atol=0)
    return mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_points_in_boxes_random_vs_reference(dtype):
    gen = torch.Generator().manual_seed(2)
    boxes = random_boxes(30, gen, spread=10.0, dtype=dtype)
    points = ((torch.rand(4000, 3, generator=gen, dtype=torch.float64) - 0.5) * 12).to(dtype)
    points[:, 2] *= 0.3
    mask = _check_points_vs_ref(points, boxes)
    assert mask.any(dim=1).float().mean() > 0.2 and (mask.sum(dim=1) > 1).any()  # overlapping boxes


def test_points_in_boxes_faces_are_inside():
    """Closed boxes: points on faces, edges and corners count; just outside does not."""
    b = T([box(x=1, y=2, z=0.5, dx=4, dy=2, dz=1, h=0.0), box(x=-5, dx=2, dy=2, dz=2, h=PI / 2)])
    pts = torch.tensor([
        [3.0, 2.0, 0.5],  # +x face of box 0
        [-1.0, 3.0, 1.0],  # corner of box 0
        [1.0, 1.0, 0.0],  # bottom edge of box 0
        [3.0 + 1e-9, 2.0, 0.5],  # just outside box 0
        [1.0, 2.0, 1.0 + 1e-9],  # just above box 0
        [-5.0, 0.0, 0.0],  # centre of box 1
        [-5.0, -1.0, -1.0],  # face/edge of box 1 (rotated 90 degrees: half sizes swap)
        [-6.0 - 1e-9, 0.0, 0.0],  # just outside box 1
    ], dtype=torch.float64)
    expected = torch.tensor([0, 0, 0, -1, -1, 1, 1, -1])
    torch.testing.assert_close(points_in_boxes(pts, b), expected, rtol=0, atol=0)


def test_points_in_boxes_first_of_overlapping_and_rotation():
    boxes = T([box(dx=4, dy=1, dz=2), box(dx=4, dy=1, dz=2, h=PI / 2), box(dx=10, dy=10, dz=10)])
    pts = torch.tensor([[1.5, 0.0, 0.0], [0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [3.0, 3.0, 3.0], [9.0, 0, 0]],
                       dtype=torch.float64)
    torch.testing.assert_close(points_in_boxes(pts, boxes), torch.tensor([0, 1, 0, 2, -1]), rtol=0, atol=0)
    mask = points_in_boxes_mask(pts, boxes)
    assert mask[2].tolist() == [True, True, True] and mask[4].tolist() == [False, False, False]


def test_points_in_boxes_nonfinite_points_are_in_no_box():
    boxes = T([box(dx=100, dy=100, dz=100), box(dx=100, dy=100, dz=100, h=PI / 2)])
    inf, nan = float("inf"), float("nan")
    pts = torch.tensor([[nan, 0, 0], [0, inf, 0], [0, 0, -inf], [inf, inf, inf], [0, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(points_in_boxes(pts, boxes), torch.tensor([-1, -1, -1, -1, 0]), rtol=0, atol=0)
    assert points_in_boxes_mask(pts, boxes)[:4].sum() == 0


def test_points_in_boxes_empty():
    b = T([box()], torch.float32)
    p = torch.zeros(5, 3)
    assert points_in_boxes(p, torch.zeros(0, 7)).tolist() == [-1] * 5
    assert points_in_boxes_mask(p, torch.zeros(0, 7)).shape == (5, 0)
    assert points_in_boxes(torch.zeros(0, 3), b).shape == (0,)
    assert points_in_boxes_mask(torch.zeros(0, 3), b).shape == (0, 1)


def test_points_in_boxes_real_scan(real_scans):
    scan = next(iter(real_scans.values()))[:, :3].contiguous()
    boxes = T([box(x=5, y=0, z=0, dx=8, dy=4, dz=3, h=0.3), box(x=-10, y=6, z=-1, dx=12, dy=6, dz=4, h=-2.0),
               box(x=0, y=-8, z=0, dx=20, dy=10, dz=6, h=PI / 2)], torch.float32)
    mask = _check_points_vs_ref(scan, boxes)
    assert mask.any()


# ---------------------------------------------------------------- NMS
@pytest.fixture(scope="module")
def nms_case():
    gen = torch.Generator().manual_seed(3)
    boxes = random_boxes(80, gen, spread=12.0, dtype=torch.float32)
    scores = torch.rand(80, generator=gen)
    return boxes, scores, ref.iou_bev_ref(boxes, boxes)


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.3, 0.5, 0.7, 1.0])
def test_nms_random_vs_reference(nms_case, threshold):
    boxes, scores, iou = nms_case
    gap = (iou - threshold).abs().fill_diagonal_(1.0)
    assert not bool(((gap > 0) & (gap < 1e-7)).any())  # no knife-edge pair that rounding could flip
    keep = nms_bev_rotated(boxes, scores, threshold)
    expected = ref.nms_ref(boxes, scores, threshold, iou)
    torch.testing.assert_close(keep, expected, rtol=0, atol=0)
    assert keep.dtype == torch.int64
    assert bool((scores[keep][:-1] >= scores[keep][1:]).all())
    if threshold == 1.0:
        assert keep.numel() == 80
    kept_iou = iou[keep][:, keep].fill_diagonal_(0)
    assert bool((kept_iou <= threshold).all())


def test_nms_ties_keep_lower_index_first():
    # Three identical boxes with equal scores: only the lowest index survives.
    boxes = T([box(x=5), box(), box(), box(), box(x=5)], torch.float32)
    scores = torch.tensor([0.5, 0.9, 0.9, 0.9, 0.5])
    torch.testing.assert_close(nms_bev_rotated(boxes, scores, 0.5), torch.tensor([1, 0]), rtol=0, atol=0)
    # Disjoint boxes, all scores equal: all kept, in index order.
    far = T([box(x=3.0 * i) for i in range(6)], torch.float32)
    torch.testing.assert_close(nms_bev_rotated(far, torch.zeros(6), 0.1), torch.arange(6), rtol=0, atol=0)


def test_nms_threshold_is_strict():
    # Unit squares offset by 0.5: IoU exactly 1/3 (in float64, the rounding of 1/3 sits below the float).
    boxes = T([box(), box(x=0.5)])
    scores = torch.tensor([0.9, 0.8], dtype=torch.float64)
    iou = iou_bev_rotated(boxes, boxes)[0, 1].item()
    assert nms_bev_rotated(boxes, scores, iou).tolist() == [0, 1]  # IoU == threshold: kept
    assert nms_bev_rotated(boxes, scores, math.nextafter(iou, 0.0)).tolist() == [0]
    # Touching boxes (IoU 0) survive even threshold 0; any overlap does not.
    touching = T([box(), box(x=1.0), box(x=1.999)])
    assert nms_bev_rotated(touching, torch.tensor([0.9, 0.8, 0.7]), 0.0).tolist() == [0, 1]
    # Contained box whose IoU equals its area ratio exactly (1/4): the area-ratio shortcut agrees.
    nested = T([box(dx=2, dy=2), box(dx=1, dy=1)])
    assert nms_bev_rotated(nested, torch.tensor([0.9, 0.8]), 0.25).tolist() == [0, 1]
    assert nms_bev_rotated(nested, torch.tensor([0.9, 0.8]), 0.2499).tolist() == [0]


def test_nms_degenerate_and_empty():
    boxes = T([box(dx=0, dy=0), box(dx=0, dy=0), box()], torch.float32)
    assert nms_bev_rotated(boxes, torch.tensor([0.3, 0.2, 0.1]), 0.0).tolist() == [0, 1, 2]
    out = nms_bev_rotated(torch.zeros(0, 7), torch.zeros(0), 0.5)
    assert out.shape == (0,) and out.dtype == torch.int64


def test_nms_many_boxes_vs_reference():
    """A few hundred crowded boxes: exercises the parallel sweep over many candidates."""
    gen = torch.Generator().manual_seed(4)
    boxes = random_boxes(300, gen, spread=40.0, dtype=torch.float32)
    scores = torch.rand(300, generator=gen)
    iou = iou_bev_rotated(boxes.double(), boxes.double())  # validated against the reference above
    torch.testing.assert_close(nms_bev_rotated(boxes, scores, 0.2), ref.nms_ref(boxes, scores, 0.2, iou),
                               rtol=0, atol=0)


# ---------------------------------------------------------------- opcheck, devices
def _sample_inputs():
    gen = torch.Generator().manual_seed(5)
    a, b = random_boxes(6, gen), random_boxes(4, gen)
    pts = (torch.rand(20, 3, generator=gen) - 0.5) * 4
    return [
        (torch.ops.pc3d.iou_bev_rotated.default, (a, b)),
        (torch.ops.pc3d.iou_3d_rotated.default, (a.double(), b.double())),
        (torch.ops.pc3d.points_in_boxes.default, (pts, a)),
        (torch.ops.pc3d.points_in_boxes_mask.default, (pts, a)),
        (torch.ops.pc3d.nms_bev_rotated.default, (a, torch.rand(6, generator=gen), 0.3)),
    ]


@pytest.mark.parametrize("op,args", _sample_inputs(), ids=lambda v: getattr(v, "__name__", ""))
def test_opcheck(op, args):
    torch.library.opcheck(op, args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA kernels need a GPU; none is present")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(6)
    a, b = random_boxes(200, gen), random_boxes(150, gen)
    pts = (torch.rand(5000, 3, generator=gen) - 0.5) * 6
    scores = torch.rand(200, generator=gen)
    c = torch.device("cuda")
    torch.testing.assert_close(iou_3d_rotated(a.to(c), b.to(c)).cpu(), iou_3d_rotated(a, b), rtol=0, atol=1e-6)
    torch.testing.assert_close(iou_bev_rotated(a.to(c), b.to(c)).cpu(), iou_bev_rotated(a, b), rtol=0, atol=1e-6)
    assert torch.equal(points_in_boxes(pts.to(c), a.to(c)).cpu(), points_in_boxes(pts, a))
    assert torch.equal(points_in_boxes_mask(pts.to(c), a.to(c)).cpu(), points_in_boxes_mask(pts, a))
    for thr in (0.0, 0.3, 0.7):
        assert torch.equal(nms_bev_rotated(a.to(c), scores.to(c), thr).cpu(), nms_bev_rotated(a, scores, thr))


# ---------------------------------------------------------------- bad input
GOOD = T([box()], torch.float32)
BAD_CALLS = [
    (lambda: iou_bev_rotated(torch.zeros(3, 5), GOOD), r"a must have shape \(M, 7\).*\(3, 5\)"),
    (lambda: iou_3d_rotated(GOOD, torch.zeros(7)), r"b must have shape \(M, 7\).*\(7,\)"),
    (lambda: iou_bev_rotated(GOOD.int(), GOOD), r"a must be float32 or float64.*torch.int32"),
    (lambda: iou_bev_rotated(GOOD, GOOD.double()), r"a is torch.float32 but b is torch.float64"),
    (lambda: iou_3d_rotated(GOOD, [[0] * 7]), r"b must be a torch.Tensor.*list"),
    (lambda: iou_3d_rotated(T([box(x=float("nan"))], torch.float32), GOOD), r"a \(1, 7\) has a non-finite.*row 0"),
    (lambda: iou_bev_rotated(GOOD, T([box(), box(h=float("inf"))], torch.float32)), r"b \(2, 7\).*non-finite.*row 1"),
    (lambda: iou_3d_rotated(GOOD, T([box(dz=-1.0)], torch.float32)), r"b \(1, 7\) has a negative size.*row 0"),
    (lambda: points_in_boxes(torch.zeros(4, 4), GOOD), r"points must have shape \(N, 3\).*\(4, 4\)"),
    (lambda: points_in_boxes_mask(torch.zeros(4, 3), torch.zeros(2, 6)), r"boxes must have shape \(M, 7\).*\(2, 6\)"),
    (lambda: points_in_boxes(torch.zeros(4, 3, dtype=torch.float16), GOOD), r"points must be float32.*float16"),
    (lambda: points_in_boxes(torch.zeros(4, 3).double(), GOOD), r"points is torch.float64 but boxes is torch.float32"),
    (lambda: points_in_boxes(torch.zeros(4, 3), T([box(dx=-2.0)], torch.float32)), r"boxes \(1, 7\) has a negative"),
    (lambda: nms_bev_rotated(GOOD, torch.zeros(2), 0.5), r"scores must have shape \(1,\).*\(2,\)"),
    (lambda: nms_bev_rotated(GOOD, torch.tensor([float("nan")]), 0.5), r"scores \(1,\) has a non-finite.*index 0"),
    (lambda: nms_bev_rotated(GOOD, torch.zeros(1), 1.5), r"iou_threshold must be in \[0, 1\], got 1.5"),
    (lambda: nms_bev_rotated(GOOD, torch.zeros(1), -0.1), r"iou_threshold must be in \[0, 1\], got -0.1"),
    (lambda: nms_bev_rotated(GOOD, torch.zeros(1), float("nan")), r"iou_threshold must be in \[0, 1\], got nan"),
    (lambda: nms_bev_rotated(GOOD, torch.zeros(1), "high"), r"iou_threshold must be a float in \[0, 1\], got 'high'"),
    (lambda: nms_bev_rotated(GOOD, torch.zeros(1, dtype=torch.int64), 0.5), r"scores must be float32.*int64"),
    (lambda: nms_bev_rotated(T([box(dy=-1.0)], torch.float32), torch.zeros(1), 0.5), r"boxes \(1, 7\) has a negative"),
]


@pytest.mark.parametrize("call,match", BAD_CALLS, ids=[m for _, m in BAD_CALLS])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_meta_device_mismatch_is_reported():
    with pytest.raises(ValueError, match=r"points is on cpu but boxes is on meta"):
        points_in_boxes(torch.zeros(2, 3), torch.zeros(1, 7, device="meta"))
