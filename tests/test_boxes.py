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
