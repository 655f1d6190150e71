"""Interactive 3D view of a frame as one self-contained HTML file (plotly, its library embedded, so the
file opens offline in any browser): points coloured by height or intensity, boxes as wireframes with
their class and score on hover.

:func:`box_edges_3d` is the one place that turns boxes into wireframe lines; it accepts rotated boxes
``(M, 7)`` and axis-aligned boxes ``(M, 6)`` (heading 0).
"""
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

# Box corner order (bottom face CCW from front-left, then the top face) and the 12 edges between them.
_CORNERS = np.array([[0.5, 0.5, -0.5], [-0.5, 0.5, -0.5], [-0.5, -0.5, -0.5], [0.5, -0.5, -0.5],
                     [0.5, 0.5, 0.5], [-0.5, 0.5, 0.5], [-0.5, -0.5, 0.5], [0.5, -0.5, 0.5]])
_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7),
          (0, 7), (3, 4)]  # the last two cross the front face: they show the heading
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
           "#fabed4", "#469990")


def box_corners_3d(boxes) -> np.ndarray:
    """Corners of boxes.

    Args:
        boxes: (M, 7) [x, y, z, dx, dy, dz, heading] (centre, sizes, yaw of dx from +x CCW) or (M, 6)
            axis-aligned [x, y, z, dx, dy, dz].

    Returns:
        (M, 8, 3) float64 corners: bottom face counter-clockwise from front-left (+dx/2, +dy/2), then the
        top face in the same order.
    """
    b = np.asarray(boxes.detach().cpu().numpy() if hasattr(boxes, "detach") else boxes, np.float64)
    if b.size == 0:
        return np.zeros((0, 8, 3))
    if b.ndim != 2 or b.shape[1] not in (6, 7):
        raise ValueError(f"boxes must be (M, 7) [x, y, z, dx, dy, dz, heading] or (M, 6) axis-aligned, got {b.shape}")
    heading = b[:, 6] if b.shape[1] == 7 else np.zeros(len(b))
    local = _CORNERS[None] * b[:, None, 3:6]
    c, s = np.cos(heading)[:, None], np.sin(heading)[:, None]
    x = local[..., 0] * c - local[..., 1] * s
    y = local[..., 0] * s + local[..., 1] * c
    return np.stack([x, y, local[..., 2]], -1) + b[:, None, :3]


def box_edges_3d(boxes) -> np.ndarray:
    """Wireframe polyline of boxes for a line plot: (M * 14 * 3, 3) float64, each edge's two ends followed
    by a NaN row (a break in the line)."""
    corners = box_corners_3d(boxes)
    if len(corners) == 0:
        return np.zeros((0, 3))
    idx = np.array(_EDGES)
    seg = corners[:, idx]  # (M, E, 2, 3)
    gap = np.full(seg.shape[:2] + (1, 3), np.nan)
    return np.concatenate([seg, gap], 2).reshape(-1, 3)


def scene_figure(points, boxes=None, scores=None, labels=None, class_names: Sequence[str] = (),
                 gt_boxes=None, color_by: str = "height", max_points: int = 80000, title: str = ""):
    """A plotly Figure of one frame.

    Args:
        points: (N, >=3) [x, y, z, (intensity), ...]; a regular subsample of at most ``max_points`` is drawn.
        boxes: (K, 7) or (K, 6) predicted boxes; ``scores (K,)`` and ``labels (K,)`` (index into
            ``class_names``) for their colour and hover text.
        gt_boxes: (M, 7) ground-truth boxes, drawn in white.
        color_by: ``'height'`` (z) or ``'intensity'`` (column 3).

    Returns:
        plotly ``go.Figure``: trace ``points`` (Scatter3d markers), one ``Scatter3d`` line trace per class
        named ``"<class> (<count>)"``, and ``ground truth (<count>)`` when given.
    """
    import plotly.graph_objects as go

    pts = np.asarray(points.detach().cpu().numpy() if hasattr(points, "detach") else points, np.float32)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must be (N, >=3) [x, y, z, ...], got shape {pts.shape}")
    if color_by not in ("height", "intensity"):
        raise ValueError(f"color_by must be 'height' or 'intensity', got {color_by!r}")
    if color_by == "intensity" and pts.shape[1] < 4:
        raise ValueError("color_by='intensity' needs a 4th column (intensity)")
    if len(pts) > max_points:
        pts = pts[:: int(np.ceil(len(pts) / max_points))]
    colour = pts[:, 2] if color_by == "height" else pts[:, 3]
    lo, hi = (np.percentile(colour, 2), np.percentile(colour, 98)) if len(colour) else (0.0, 1.0)
    fig = go.Figure()
    fig.add_trace(go.Scatter3d(
        x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name=f"points ({len(pts)})",
        marker=dict(size=1.2, color=colour, colorscale="Viridis", cmin=lo, cmax=hi,
                    colorbar=dict(title=color_by, thickness=12, x=1.0)),
        hoverinfo="skip"))
    b = np.zeros((0, 7)) if boxes is None else np.asarray(
        boxes.detach().cpu().numpy() if hasattr(boxes, "detach") else boxes, np.float64)
    k = len(b)
    sc = np.ones(k) if scores is None else np.asarray(scores, np.float64).reshape(-1)
    lab = np.zeros(k, np.int64) if labels is None else np.asarray(labels, np.int64).reshape(-1)
    if len(sc) != k or len(lab) != k:
        raise ValueError(f"scores ({len(sc)}) and labels ({len(lab)}) must have one entry per box ({k})")
    for cls in sorted(set(lab.tolist())):
        sel = lab == cls
        name = class_names[cls] if 0 <= cls < len(class_names) else f"class {cls}"
        _add_boxes(fig, b[sel], name=f"{name} ({int(sel.sum())})", colour=PALETTE[cls % len(PALETTE)],
                   hover=[f"{name} {s:.2f}" for s in sc[sel]])
    if gt_boxes is not None and len(gt_boxes):
        g = np.asarray(gt_boxes, np.float64)
        _add_boxes(fig, g, name=f"ground truth ({len(g)})", colour="#ffffff", hover=["ground truth"] * len(g))
    fig.update_layout(
        title=title, template="plotly_dark", margin=dict(l=0, r=0, t=40 if title else 0, b=0),
        legend=dict(itemsizing="constant"),
        scene=dict(aspectmode="data", xaxis_title="x (m)", yaxis_title="y (m)", zaxis_title="z (m)",
                   camera=dict(eye=dict(x=-0.9, y=-0.9, z=0.7))))
    return fig


def _add_boxes(fig, boxes, name: str, colour: str, hover):
    import plotly.graph_objects as go

    lines = box_edges_3d(boxes)
    text = np.repeat(np.asarray(hover, dtype=object), len(_EDGES) * 3).tolist()
    # Plain lists (not numpy arrays) keep the coordinates readable in the HTML's JSON.
    as_list = [None if np.isnan(v) else round(float(v), 3) for v in lines[:, 0]], \
        [None if np.isnan(v) else round(float(v), 3) for v in lines[:, 1]], \
        [None if np.isnan(v) else round(float(v), 3) for v in lines[:, 2]]
    fig.add_trace(go.Scatter3d(x=as_list[0], y=as_list[1], z=as_list[2], mode="lines", name=name,
                               line=dict(color=colour, width=4), text=text, hoverinfo="text"))


def write_scene_html(path, points, boxes=None, scores=None, labels=None, class_names: Sequence[str] = (),
                     gt_boxes=None, color_by: str = "height", max_points: int = 80000, title: str = "") -> Path:
    """Writes :func:`scene_figure` as a self-contained HTML file (plotly.js inline: no network needed) and
    returns its path."""
    fig = scene_figure(points, boxes, scores, labels, class_names, gt_boxes, color_by, max_points, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True, config=dict(displaylogo=False),
                   default_width="100%", default_height="96vh")
    return path


def read_scene_html(path) -> Optional[dict]:
    """The figure JSON (``{"data": [...], "layout": {...}}``) that :func:`write_scene_html` put in ``path``,
    or None when there is none; arrays that plotly stored as typed arrays are decoded (for checks)."""
    import base64
    import json
    import re

    text = Path(path).read_text(encoding="utf-8")
    m = re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"displaylogo"', text, re.S)
    if m is None:
        return None
    data, layout = json.loads(m.group(1)), json.loads(m.group(2))

    def decode(v):
        if isinstance(v, dict) and "bdata" in v and "dtype" in v:
            return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
        return v

    for trace in data:
        for key in ("x", "y", "z"):
            if key in trace:
                trace[key] = decode(trace[key])
        if isinstance(trace.get("marker"), dict) and "color" in trace["marker"]:
            trace["marker"]["color"] = decode(trace["marker"]["color"])
    return {"data": data, "layout": layout}
