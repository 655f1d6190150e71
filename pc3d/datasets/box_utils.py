"""Plain-numpy box geometry used by the simulator and the data pipeline (CPU, vectorised).

Boxes follow pc3d's convention: ``boxes: (M, 7) float [x, y, z, dx, dy, dz, heading]`` with (x, y, z) the
box centre, (dx, dy, dz) the full extents along the box's own x (heading direction), y and z axes, and
heading the yaw about +z from +x, counter-clockwise, wrapped to [-pi, pi).

These helpers are the data pipeline's own: the compiled ``pc3d.ops.points_in_boxes`` serves the
model side; here the inputs are numpy arrays inside DataLoader workers and the box counts are small.
"""
import numpy as np


def wrap_heading(heading):
    """Wrap angles to [-pi, pi). ``heading``: array-like float, any shape; returns the same shape."""
    h = np.asarray(heading)
    return (h + np.pi) % (2 * np.pi) - np.pi


def bev_corners(boxes):
    """BEV corners of boxes.

    Args:
        boxes: (M, >=7) float [x, y, z, dx, dy, dz, heading] (z and dz unused).
    Returns:
        (M, 4, 2) float64 corners (x, y), counter-clockwise: (+dx/2, +dy/2), (-dx/2, +dy/2),
        (-dx/2, -dy/2), (+dx/2, -dy/2) in the box frame.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    boxes = boxes.reshape(-1, boxes.shape[-1])
    sx = np.array([0.5, -0.5, -0.5, 0.5])
    sy = np.array([0.5, 0.5, -0.5, -0.5])
    lx = boxes[:, 3:4] * sx  # (M, 4) local corner offsets
    ly = boxes[:, 4:5] * sy
    c, s = np.cos(boxes[:, 6:7]), np.sin(boxes[:, 6:7])
    x = boxes[:, 0:1] + c * lx - s * ly
    y = boxes[:, 1:2] + s * lx + c * ly
    return np.stack([x, y], axis=-1)


def points_to_box_frame(points, box):
    """Points expressed in one box's frame. ``points``: (N, >=3); ``box``: (7,). Returns (N, 3) float64."""
    d = np.asarray(points, dtype=np.float64)[:, :3] - np.asarray(box[:3], dtype=np.float64)
    c, s = np.cos(box[6]), np.sin(box[6])
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)


def points_in_boxes_mask(points, boxes, margin=0.0):
    """Which points lie inside which boxes (closed boxes, optionally grown by ``margin`` metres).

    Args:
        points: (N, >=3) float [x, y, z, ...].
        boxes: (M, 7) float [x, y, z, dx, dy, dz, heading].
    Returns:
        (N, M) bool. Memory is N*M, so use ``points_in_boxes_indices`` for whole LiDAR frames.
    """
    pts = np.asarray(points, dtype=np.float64)[:, None, :3]  # (N, 1, 3)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)[None]  # (1, M, 7)
    d = pts - b[..., :3]
    c, s = np.cos(b[..., 6]), np.sin(b[..., 6])
    lx = c * d[..., 0] + s * d[..., 1]
    ly = -s * d[..., 0] + c * d[..., 1]
    return ((np.abs(lx) <= b[..., 3] / 2 + margin) & (np.abs(ly) <= b[..., 4] / 2 + margin)
            & (np.abs(d[..., 2]) <= b[..., 5] / 2 + margin))


def points_in_boxes_indices(points, boxes, cell=4.0):
    """Indices of the points inside each box, for a whole frame without an N x M test.

    Points are bucketed into a BEV grid of ``cell``-metre cells sorted by cell key; each box tests only
    the points of the cells its circumscribed circle touches (one contiguous slice per grid row).

    Args:
        points: (N, >=3) float [x, y, z, ...].
        boxes: (M, 7) float.
    Returns:
        list of M int64 arrays, each ascending point indices into ``points``.
    """
    points = np.asarray(points)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    if len(points) == 0:
        return [np.zeros(0, dtype=np.int64) for _ in boxes]
    xy = points[:, :2].astype(np.float64)
    lo = xy.min(0)
    ij = np.floor((xy - lo) / cell).astype(np.int64)
    ny = int(ij[:, 1].max()) + 1
    key = ij[:, 0] * ny + ij[:, 1]
    order = np.argsort(key, kind="stable")
    skey = key[order]
    out = []
    for box in boxes:
        r = 0.5 * np.hypot(box[3], box[4])
        i0, j0 = np.floor((box[:2] - r - lo) / cell).astype(np.int64)
        i1, j1 = np.floor((box[:2] + r - lo) / cell).astype(np.int64)
        j0, j1 = max(j0, 0), min(j1, ny - 1)
        rows = np.arange(max(i0, 0), i1 + 1)
        if len(rows) == 0 or j1 < j0:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        starts = np.searchsorted(skey, rows * ny + j0, side="left")
        ends = np.searchsorted(skey, rows * ny + j1, side="right")
        cand = np.concatenate([order[a:b] for a, b in zip(starts, ends)])
        local = points_to_box_frame(points[cand], box)
        inside = ((np.abs(local[:, 0]) <= box[3] / 2) & (np.abs(local[:, 1]) <= box[4] / 2)
                  & (np.abs(local[:, 2]) <= box[5] / 2))
        out.append(np.sort(cand[inside]).astype(np.int64))
    return out


def bev_overlap_matrix(boxes_a, boxes_b, margin=0.0):
    """Whether rotated BEV rectangles overlap (separating-axis test), all pairs at once.

    Args:
        boxes_a: (A, >=7) float; boxes_b: (B, >=7) float [x, y, z, dx, dy, dz, heading].
        margin: metres added to every half extent (a clearance between objects).
    Returns:
        (A, B) bool, True where the two footprints intersect (touching counts as overlap).
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 7).copy()
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 7).copy()
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=bool)
    a[:, 3:5] += 2 * margin
    b[:, 3:5] += 2 * margin
    ca, cb = bev_corners(a), bev_corners(b)  # (A, 4, 2), (B, 4, 2)
    # Candidate separating axes: the two edge normals of each rectangle (unit heading vectors).
    def axes(boxes):
        h = boxes[:, 6]
        return np.stack([np.stack([np.cos(h), np.sin(h)], -1), np.stack([-np.sin(h), np.cos(h)], -1)], 1)
    ax = np.concatenate([np.broadcast_to(axes(a)[:, None], (len(a), len(b), 2, 2)),
                         np.broadcast_to(axes(b)[None], (len(a), len(b), 2, 2))], axis=2)  # (A, B, 4, 2)
    pa = np.einsum("akd,abnd->abnk", ca, ax)  # (A, B, 4 axes, 4 corners)
    pb = np.einsum("bkd,abnd->abnk", cb, ax)
    separated = (pa.max(-1) < pb.min(-1)) | (pb.max(-1) < pa.min(-1))
    return ~separated.any(-1)
