"""Bird's-eye-view PNG of a frame: points (grey, darker = higher), GT boxes green, predictions red
with their scores. Drawn with matplotlib's Agg backend (works headless, unlike open3d's renderer)."""
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def _np(x, dtype=np.float32, cols=None):
    if x is None:
        return np.zeros((0, cols) if cols else 0, dtype)
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype)
    return a.reshape(-1, cols) if cols else a.reshape(-1)


def _boxes7(boxes) -> np.ndarray:
    """(M, 7) [x, y, z, dx, dy, dz, heading] float32 from (M, 7) boxes or axis-aligned (M, 6) ones (heading 0,
    as indoor detectors give them)."""
    if boxes is not None:
        a = np.asarray(boxes.detach().cpu().numpy() if hasattr(boxes, "detach") else boxes, np.float32)
        if a.ndim == 2 and a.shape[1] == 6:
            return np.concatenate([a, np.zeros((len(a), 1), np.float32)], 1)
        if a.size and (a.ndim != 2 or a.shape[1] != 7):
            raise ValueError(f"boxes must be (M, 7) [x, y, z, dx, dy, dz, heading] or (M, 6) axis-aligned, "
                             f"got shape {a.shape}")
    return _np(boxes, cols=7)


def box_corners_bev(boxes) -> np.ndarray:
    """BEV corners of boxes.

    Args:
        boxes: (M, 7) [x, y, z, dx, dy, dz, heading]; heading is the yaw of the dx axis from +x, CCW; or (M, 6)
            axis-aligned [x, y, z, dx, dy, dz] (heading 0).

    Returns:
        (M, 4, 2) float32 corners [x, y], counter-clockwise starting at front-left (+dx/2, +dy/2).
    """
    b = _boxes7(boxes)
    local = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]], np.float32)
    xy = local[None] * b[:, None, 3:5]
    c, s = np.cos(b[:, 6])[:, None], np.sin(b[:, 6])[:, None]
    rot = np.stack([xy[..., 0] * c - xy[..., 1] * s, xy[..., 0] * s + xy[..., 1] * c], axis=-1)
    return (rot + b[:, None, :2]).astype(np.float32)


def draw_bev(path, points, gt_boxes=None, pred_boxes=None, pred_scores=None, pc_range: Optional[Sequence[float]] = None,
             score_threshold: float = 0.3, title: str = "", max_points: int = 150000, dpi: int = 100) -> Path:
    """Writes a BEV PNG of one frame and returns its path.

    Args:
        path: output .png file (parent folders are created).
        points: (N, >=3) [x, y, z, ...] metres, ego frame.
        gt_boxes: (M, 7) boxes drawn green; pred_boxes: (K, 7) drawn red with ``pred_scores (K,)``; (M, 6)
            axis-aligned boxes (indoor detectors) are drawn too, without a heading line.
        pc_range: [x0, y0, z0, x1, y1, z1] sets the view (default: the points' extent).
        score_threshold: predictions below it are not drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    pts = np.asarray(points.detach().cpu().numpy() if hasattr(points, "detach") else points, np.float32)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must be (N, >=3) [x, y, z, ...], got shape {pts.shape}")
    pts = pts[:, :3]
    if len(pts) > max_points:  # a regular subsample keeps the picture and the file size reasonable
        pts = pts[:: int(np.ceil(len(pts) / max_points))]
    fig, ax = plt.subplots(figsize=(10, 10))
    if len(pts):
        # Grey from mid (ground) to black (highest points): legible at any zoom, boxes stay on top.
        z = pts[:, 2]
        lo, hi = np.percentile(z, 2), np.percentile(z, 98)
        ax.scatter(pts[:, 0], pts[:, 1], s=0.3, c=z, cmap="Greys", vmin=lo - (hi - lo + 1e-3), vmax=hi,
                   linewidths=0, rasterized=True)
    gt, pred, scores = _boxes7(gt_boxes), _boxes7(pred_boxes), _np(pred_scores)
    # axis-aligned (M, 6) boxes (indoor) have no heading: no centre-to-front line for them
    heading_lines = [np.ndim(b) == 2 and np.shape(b)[1] == 7 for b in (gt_boxes, pred_boxes)]
    if len(scores) != len(pred):
        raise ValueError(f"pred_scores has {len(scores)} entries for {len(pred)} pred_boxes")
    keep = scores >= score_threshold
    for boxes, colour, width, line in ((gt, "limegreen", 1.5, heading_lines[0]),
                                       (pred[keep], "red", 1.0, heading_lines[1])):
        for box, corners in zip(boxes, box_corners_bev(boxes)):
            ax.add_patch(Polygon(corners, closed=True, fill=False, edgecolor=colour, linewidth=width))
            if not line:
                continue
            front = corners[[0, 3]].mean(0)  # a line from the centre to the front face shows the heading
            ax.plot([box[0], front[0]], [box[1], front[1]], color=colour, linewidth=width)
    for box, score in zip(pred[keep], scores[keep]):
        ax.text(box[0], box[1] + box[4] / 2 + 0.5, f"{score:.2f}", color="red", fontsize=6, ha="center")
    if pc_range is not None:
        ax.set_xlim(pc_range[0], pc_range[3])
        ax.set_ylim(pc_range[1], pc_range[4])
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or f"GT {len(gt)} (green), predictions >= {score_threshold:g}: {int(keep.sum())} (red)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
