"""CenterPoint training targets on the BEV output grid, and their inverse (box decoding).

The output grid has cells of ``cell = voxel_size[:2] * out_size_factor`` metres starting at
``pc_range[:2]``. A box centre (x, y) sits at continuous grid position
``u = (x - x0) / cell_x, v = (y - y0) / cell_y``; its peak cell is ``(floor(v), floor(u))`` and the
regression target at that cell is ``[u - floor(u), v - floor(v), z, log dx, log dy, log dz, sin h, cos h]``
(CODE_SIZE = 8 columns), plus ``[sin 2h, cos 2h]`` with ``double_angle`` (CODE_SIZE + 2 columns): the box
axis without its direction. Where front and back look alike, sin/cos of h alone average towards zero and
the decoded axis is random; 2h is the same for both directions, so the axis stays sharp and sin/cos of h
only pick which of its two directions the box faces. With ``with_velocity`` two more columns
``[vx, vy]`` (m/s, as given in the boxes' columns 7:9; NaN where unknown, which the loss skips) come last.
Heatmaps get a 2D Gaussian per box (CornerNet radius) drawn with a vectorised torch scatter-max, so boxes
of one class never add up above 1.
"""
import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import torch

CODE_SIZE = 8


@dataclass
class BEVGrid:
    """The head's output grid: origin (x0, y0) metres, cell size (cx, cy) metres, shape (H, W)."""

    x0: float
    y0: float
    cell_x: float
    cell_y: float
    height: int
    width: int

    @classmethod
    def from_config(cls, pc_range: Sequence[float], voxel_size: Sequence[float], out_size_factor: int) -> "BEVGrid":
        cx, cy = voxel_size[0] * out_size_factor, voxel_size[1] * out_size_factor
        w = int(round((pc_range[3] - pc_range[0]) / cx))
        h = int(round((pc_range[4] - pc_range[1]) / cy))
        return cls(float(pc_range[0]), float(pc_range[1]), float(cx), float(cy), h, w)


def gaussian_radius(height: torch.Tensor, width: torch.Tensor, min_overlap: float = 0.1) -> torch.Tensor:
    """Largest radius (cells) by which a box's corner may move and keep IoU >= min_overlap (CornerNet).

    Takes the smallest root over CornerNet's three cases (both corners shifted inward, outward, one
    each). ``height``/``width``: (M,) float box extent in cells. Returns (M,) float.
    """
    o = min_overlap
    b1 = height + width
    c1 = width * height * (1 - o) / (1 + o)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - o) * width * height
    r2 = (b2 + torch.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3, b3, c3 = 4 * o, -2 * o * (height + width), (o - 1) * width * height
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def draw_heatmap(heatmap: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, labels: torch.Tensor) -> None:
    """Draws Gaussians in place (element-wise max with what is there).

    Args:
        heatmap: (K, H, W) float32, one channel per class.
        centres: (M, 2) int64 peak cells (row, col), inside the map.
        radii: (M,) int64 radius in cells (>= 0); sigma = (2 r + 1) / 6 as in CenterNet.
        labels: (M,) int64 class channel of each box.
    """
    if centres.shape[0] == 0:
        return
    k, h, w = heatmap.shape
    r_max = int(radii.max())
    offs = torch.arange(-r_max, r_max + 1, device=heatmap.device)
    dy, dx = torch.meshgrid(offs, offs, indexing="ij")  # (S, S)
    dy, dx = dy.reshape(1, -1), dx.reshape(1, -1)
    sigma = (2 * radii.float() + 1) / 6
    value = torch.exp(-(dx ** 2 + dy ** 2).float() / (2 * sigma[:, None] ** 2))  # (M, S*S)
    rows, cols = centres[:, :1] + dy, centres[:, 1:] + dx
    r = radii[:, None]
    # Inside each box's own square window, inside the map, and not a negligible tail value.
    keep = (dy.abs() <= r) & (dx.abs() <= r) & (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    keep &= value >= torch.finfo(torch.float32).eps
    flat = (labels[:, None] * h + rows) * w + cols
    heatmap.view(-1).scatter_reduce_(0, flat[keep], value[keep], reduce="amax")


def encode_targets(gt_boxes: torch.Tensor, gt_labels: torch.Tensor, grid: BEVGrid, num_classes: int,
                   max_objs: int = 500, min_overlap: float = 0.1, min_radius: int = 2,
                   reg_radius: int = 0, double_angle: bool = False,
                   with_velocity: bool = False) -> Tuple[torch.Tensor, ...]:
    """Targets of one sample.

    Args:
        gt_boxes: (M, 7) float32 (x, y, z, dx, dy, dz, heading), or (M, 9) with vx, vy (needed by
            ``with_velocity``); boxes whose centre falls outside the grid are ignored (as are boxes beyond
            ``max_objs``).
        gt_labels: (M,) int64 in [0, num_classes).
        reg_radius: r >= 0. Besides its peak cell, every cell within r cells (Chebyshev) of a box's peak
            regresses that box too, its centre offset taken from that cell (values in [-r, r + 1)). A
            decoded peak one cell off then still lands on the right centre, which matters for long
            vehicles whose heatmap maximum is often a neighbour of the true cell. A cell claimed by
            several boxes regresses the one whose centre is nearest. r = 0 is CenterPoint's encoding.
        double_angle: append the sin 2h, cos 2h columns (see the module docstring).
        with_velocity: append the vx, vy columns (NaN kept: unknown velocity).

    Returns:
        heatmap (K, H, W) float32; index (E,) int64 flat cell row * W + col; mask (E,) bool;
        target (E, code_size(double_angle, with_velocity)) float32 regression targets (columns in the
        module docstring);
        E = max_objs * (2 r + 1) ** 2 entries.
    """
    if reg_radius < 0:
        raise ValueError(f"reg_radius must be >= 0, got {reg_radius}")
    if with_velocity and (gt_boxes.ndim != 2 or gt_boxes.shape[1] < 9):
        raise ValueError("with_velocity needs gt_boxes (M, 9) [x, y, z, dx, dy, dz, heading, vx, vy], got shape "
                         f"{tuple(gt_boxes.shape)} (a dataset without velocity needs a head without it)")
    device = gt_boxes.device
    entries = max_objs * (2 * reg_radius + 1) ** 2
    heatmap = torch.zeros(num_classes, grid.height, grid.width, device=device)
    index = torch.zeros(entries, dtype=torch.long, device=device)
    mask = torch.zeros(entries, dtype=torch.bool, device=device)
    target = torch.zeros(entries, code_size(double_angle, with_velocity), device=device)
    if gt_boxes.shape[0] == 0:
        return heatmap, index, mask, target
    u = (gt_boxes[:, 0] - grid.x0) / grid.cell_x
    v = (gt_boxes[:, 1] - grid.y0) / grid.cell_y
    col, row = torch.floor(u).long(), torch.floor(v).long()
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    inside &= (gt_labels >= 0) & (gt_labels < num_classes) & (gt_boxes[:, 3:6] > 0).all(dim=1)
    idx = torch.nonzero(inside).flatten()[:max_objs]
    boxes, labels, u, v, col, row = gt_boxes[idx], gt_labels[idx], u[idx], v[idx], col[idx], row[idx]
    radius = gaussian_radius(boxes[:, 4] / grid.cell_y, boxes[:, 3] / grid.cell_x, min_overlap)
    radius = radius.floor().long().clamp(min=min_radius)
    draw_heatmap(heatmap, torch.stack([row, col], dim=1), radius, labels)
    cols_rest = [boxes[:, 2], *torch.log(boxes[:, 3:6]).unbind(1), torch.sin(boxes[:, 6]), torch.cos(boxes[:, 6])]
    if double_angle:
        cols_rest += [torch.sin(2 * boxes[:, 6]), torch.cos(2 * boxes[:, 6])]
    if with_velocity:
        cols_rest += [boxes[:, 7], boxes[:, 8]]
    rest = torch.stack(cols_rest, dim=1)  # (M, code size - 2): the same at every cell
    if reg_radius == 0:
        cells, du, dv, rest_rows = row * grid.width + col, u - col, v - row, rest
    else:
        offs = torch.arange(-reg_radius, reg_radius + 1, device=device)
        oy, ox = (o.reshape(1, -1) for o in torch.meshgrid(offs, offs, indexing="ij"))  # (1, S)
        r_all, c_all = row[:, None] + oy, col[:, None] + ox  # (M, S)
        du_all, dv_all = u[:, None] - c_all, v[:, None] - r_all
        # Distance from each cell's centre to the box centre, in cells: nearest box wins a shared cell.
        dist = (du_all - 0.5) ** 2 + (dv_all - 0.5) ** 2
        ok = (r_all >= 0) & (r_all < grid.height) & (c_all >= 0) & (c_all < grid.width)
        obj = torch.arange(len(idx), device=device)[:, None].expand_as(r_all)[ok]
        cells_all, dist = (r_all * grid.width + c_all)[ok], dist[ok]
        order = torch.argsort(dist, stable=True)  # nearest first; a stable unique keeps the first per cell
        order = order[torch.argsort(cells_all[order], stable=True)]
        first = torch.ones_like(order, dtype=torch.bool)
        first[1:] = cells_all[order][1:] != cells_all[order][:-1]
        pick = order[first]
        cells, du, dv, rest_rows = cells_all[pick], du_all[ok][pick], dv_all[ok][pick], rest[obj[pick]]
    n = cells.numel()
    index[:n] = cells
    mask[:n] = True
    target[:n] = torch.cat([du[:, None], dv[:, None], rest_rows], dim=1)
    return heatmap, index, mask, target


def code_size(double_angle: bool = False, with_velocity: bool = False) -> int:
    """Regression columns: CODE_SIZE, + 2 with the double-angle columns, + 2 with velocity."""
    return CODE_SIZE + 2 * bool(double_angle) + 2 * bool(with_velocity)


def decode_boxes(reg: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, grid: BEVGrid,
                 with_velocity: bool = False) -> torch.Tensor:
    """Inverse of the regression encoding.

    Args:
        reg: (K, CODE_SIZE) or (K, CODE_SIZE + 2) regression values at the cells (the latter with the
            double-angle columns: the axis comes from 2h, its direction from sin/cos h), each followed by
            the two velocity columns when ``with_velocity``; rows, cols: (K,) int64 cells.

    Returns:
        (K, 7) float32 boxes (x, y, z, dx, dy, dz, heading), heading in [-pi, pi); (K, 9) with vx, vy
        appended when ``with_velocity``.
    """
    if with_velocity:
        return torch.cat([decode_boxes(reg[:, :-2], rows, cols, grid), reg[:, -2:]], dim=1)
    if reg.shape[1] not in (CODE_SIZE, CODE_SIZE + 2):
        raise ValueError(f"reg has {reg.shape[1]} columns; expected {CODE_SIZE} or {CODE_SIZE + 2} (double angle), "
                         "plus 2 with with_velocity=True")
    x = (cols.float() + reg[:, 0]) * grid.cell_x + grid.x0
    y = (rows.float() + reg[:, 1]) * grid.cell_y + grid.y0
    dims = torch.exp(reg[:, 3:6].clamp(max=5.0))  # clamp: an untrained head must not overflow to inf
    heading = torch.atan2(reg[:, 6], reg[:, 7])
    if reg.shape[1] == CODE_SIZE + 2:
        axis = torch.atan2(reg[:, 8], reg[:, 9]) / 2  # in (-pi/2, pi/2]; the box axis, either direction
        # The direction of the axis closer to the sin/cos h estimate.
        heading = torch.where(torch.cos(heading - axis) >= 0, axis, axis + math.pi)
    heading = torch.remainder(heading + math.pi, 2 * math.pi) - math.pi
    return torch.cat([x[:, None], y[:, None], reg[:, 2:3], dims, heading[:, None]], dim=1)
