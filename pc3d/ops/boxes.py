"""Box ops: points in rotated boxes, pairwise rotated IoU (BEV and 3D), rotated BEV NMS.

Boxes are upright 3D boxes ``(x, y, z, dx, dy, dz, heading)``: centre of the box, metres, heading = yaw
about +z from +x, counter-clockwise (any value is accepted; only its cosine and sine are used).

Dtypes: boxes and points may be float32 or float64 (the two arguments of one call must match). The
kernels compute all geometry in float64 whatever the input dtype, and the IoUs come back in the input
dtype, so float32 inputs give float32 IoUs rounded once from a float64 result.

Boundary rule: containment is closed, a point exactly on a face of a box is inside it. Non-finite
points (NaN/inf) are in no box. Boxes must be finite with sizes >= 0; a box with a zero BEV size has
IoU 0 with everything (never NaN).

Unlike the Waymo metric's ``ComputeIoU``, these ops do not zero the IoU of boxes with a side <= 0.01 m;
a metric that must match Waymo bit-for-bit applies that rule itself.
"""

import torch

from ._library import load_library

load_library()

__all__ = ["points_in_boxes", "points_in_boxes_mask", "iou_bev_rotated", "iou_3d_rotated", "nms_bev_rotated"]

_FLOATS = (torch.float32, torch.float64)


def _check_floating(name: str, t, shape_doc: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor {shape_doc}, got {type(t).__name__}")
    if t.dtype not in _FLOATS:
        raise ValueError(f"{name} must be float32 or float64 {shape_doc}, got dtype {t.dtype}")


def _check_box_shape(name: str, boxes) -> None:
    """Type, float dtype and shape (M, 7)."""
    _check_floating(name, boxes, "(M, 7) [x, y, z, dx, dy, dz, heading]")
    if boxes.dim() != 2 or boxes.shape[1] != 7:
        raise ValueError(f"{name} must have shape (M, 7) [x, y, z, dx, dy, dz, heading], got {tuple(boxes.shape)}")


def _check_box_values(name: str, boxes: torch.Tensor) -> None:
    """Finite values and sizes >= 0 (one reduction each; a device sync on GPU)."""
    if boxes.numel() == 0:
        return
    if not bool(torch.isfinite(boxes).all()):
        bad = int((~torch.isfinite(boxes)).any(dim=1).nonzero()[0, 0])
        raise ValueError(f"{name} {tuple(boxes.shape)} has a non-finite value (NaN/inf), first in row {bad}: "
                         f"{boxes[bad].tolist()}")
    sizes = boxes[:, 3:6]
    if bool((sizes < 0).any()):
        bad = int((sizes < 0).any(dim=1).nonzero()[0, 0])
        raise ValueError(f"{name} {tuple(boxes.shape)} has a negative size (dx, dy, dz) in row {bad}: "
                         f"{sizes[bad].tolist()}")


def _check_same(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}; put them on one device")
    if a.dtype != b.dtype:
        raise ValueError(f"{name_a} is {a.dtype} but {name_b} is {b.dtype}; convert one so the dtypes match")


def _check_points_boxes(points, boxes) -> None:
    _check_floating("points", points, "(N, 3) [x, y, z]")
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3) [x, y, z], got {tuple(points.shape)}; "
                         "slice the coordinates first, e.g. points[:, :3]")
    _check_box_shape("boxes", boxes)
    _check_same("points", points, "boxes", boxes)
    _check_box_values("boxes", boxes)


def points_in_boxes(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Index of the first box that contains each point.

    Args:
        points: (N, 3) float32|float64 [x, y, z].
        boxes: (M, 7) same dtype and device [x, y, z, dx, dy, dz, heading].

    Returns:
        (N,) int64: the smallest box index j whose closed box contains the point, -1 when none does.
    """
    _check_points_boxes(points, boxes)
    return torch.ops.pc3d.points_in_boxes(points, boxes)


def points_in_boxes_mask(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Which boxes contain which points.

    Args:
        points: (N, 3) float32|float64 [x, y, z].
        boxes: (M, 7) same dtype and device [x, y, z, dx, dy, dz, heading].

    Returns:
        (N, M) bool: ``mask[i, j]`` is True when point i lies in (or on the surface of) box j.
    """
    _check_points_boxes(points, boxes)
    return torch.ops.pc3d.points_in_boxes_mask(points, boxes)


def _check_pair(a, b) -> None:
    _check_box_shape("a", a)
    _check_box_shape("b", b)
    _check_same("a", a, "b", b)
    _check_box_values("a", a)
    _check_box_values("b", b)


def iou_bev_rotated(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of the bird's-eye-view (x, y) rotated rectangles of two box sets.

    The intersection is the exact area of the clipped convex polygon (computed in float64).

    Args:
        a: (N, 7) float32|float64 [x, y, z, dx, dy, dz, heading] (z and dz are ignored).
        b: (M, 7) same dtype and device.

    Returns:
        (N, M) in the input dtype, values in [0, 1].
    """
    _check_pair(a, b)
    return torch.ops.pc3d.iou_bev_rotated(a, b)


def iou_3d_rotated(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise 3D IoU of upright boxes rotated about z (the Waymo detection metric's IoU).

    intersection = BEV intersection area x overlap of [z - dz/2, z + dz/2]; union = vol_a + vol_b -
    intersection. Computed in float64; a zero-volume box has IoU 0 with everything.

    Args:
        a: (N, 7) float32|float64 [x, y, z, dx, dy, dz, heading].
        b: (M, 7) same dtype and device.

    Returns:
        (N, M) in the input dtype, values in [0, 1].
    """
    _check_pair(a, b)
    return torch.ops.pc3d.iou_3d_rotated(a, b)


def nms_bev_rotated(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression with rotated BEV IoU.

    Boxes are visited by descending score; on equal scores the lower index comes first. A box is
    dropped when its BEV IoU with an already kept box is strictly greater than ``iou_threshold``
    (so ``iou_threshold=1`` keeps everything and ``0`` drops every box that overlaps a kept one).

    Args:
        boxes: (N, 7) float32|float64 [x, y, z, dx, dy, dz, heading].
        scores: (N,) float32|float64 on the same device, finite.
        iou_threshold: float in [0, 1].

    Returns:
        (K,) int64 indices into ``boxes`` of the kept boxes, by descending score.
    """
    _check_box_shape("boxes", boxes)
    _check_floating("scores", scores, "(N,)")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape ({boxes.shape[0]},) to match boxes {tuple(boxes.shape)}, "
                         f"got {tuple(scores.shape)}")
    if scores.device != boxes.device:
        raise ValueError(f"scores is on {scores.device} but boxes is on {boxes.device}; put them on one device")
    _check_box_values("boxes", boxes)
    if scores.numel() and not bool(torch.isfinite(scores).all()):
        bad = int((~torch.isfinite(scores)).nonzero()[0, 0])
        raise ValueError(f"scores {tuple(scores.shape)} has a non-finite value at index {bad}: {scores[bad].item()}")
    if isinstance(iou_threshold, torch.Tensor) or isinstance(iou_threshold, bool):
        raise ValueError(f"iou_threshold must be a Python float in [0, 1], got {type(iou_threshold).__name__}")
    try:
        thr = float(iou_threshold)
    except (TypeError, ValueError):
        raise ValueError(f"iou_threshold must be a float in [0, 1], got {iou_threshold!r}") from None
    if not 0.0 <= thr <= 1.0:  # also rejects NaN
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold!r}")
    return torch.ops.pc3d.nms_bev_rotated(boxes, scores, thr)


def _register_fakes() -> None:
    """Shape functions so the ops trace under torch.compile / FakeTensor (and pass opcheck)."""

    @torch.library.register_fake("pc3d::points_in_boxes")
    def _(points, boxes):
        return points.new_empty((points.shape[0],), dtype=torch.int64)

    @torch.library.register_fake("pc3d::points_in_boxes_mask")
    def _(points, boxes):
        return points.new_empty((points.shape[0], boxes.shape[0]), dtype=torch.bool)

    @torch.library.register_fake("pc3d::iou_bev_rotated")
    def _(a, b):
        return a.new_empty((a.shape[0], b.shape[0]))

    @torch.library.register_fake("pc3d::iou_3d_rotated")
    def _(a, b):
        return a.new_empty((a.shape[0], b.shape[0]))

    @torch.library.register_fake("pc3d::nms_bev_rotated")
    def _(boxes, scores, iou_threshold):
        # The number of kept boxes depends on the data.
        k = torch.library.get_ctx().new_dynamic_size()
        return boxes.new_empty((k,), dtype=torch.int64)


_register_fakes()
