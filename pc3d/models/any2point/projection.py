"""3D-to-any virtual projection: place 3D token centres in a frozen model's own 1D/2D position grid.

A frozen language model knows positions 0..P-1 on a line; a frozen ViT knows a G x G patch grid. We
never feed the model images or words: each token centre is projected, per virtual view, onto that
grid, the model's own position embedding is read there by (bi)linear interpolation, and the views are
averaged. The projected grid coordinates also define the virtual cells the guided adapter aggregates
over (see adapters.py).

Coordinates: centres are assumed to be normalised to the unit sphere (``extent`` = 1), which the
object datasets guarantee; projections are clamped to the grid so outliers never index out of range.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def virtual_view_rotations(num_views: int, elevation_deg: float = 30.0) -> torch.Tensor:
    """Rotations of the virtual views: azimuths evenly spread about +z, elevation alternating +/-.

    View v rotates a point as ``p' = R_v @ p`` with ``R_v = R_x(+-elev) @ R_z(2 pi v / V)``; a 1D view
    reads ``p'_x`` (the line), a 2D view looks down ``+z'`` and images ``(p'_x, p'_y)``.

    Returns:
        (V, 3, 3) float32 rotation matrices.
    """
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}")
    mats = []
    for v in range(num_views):
        a = 2.0 * math.pi * v / num_views
        e = math.radians(elevation_deg) * (1 if v % 2 == 0 else -1)
        rz = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
        rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(e), -math.sin(e)], [0.0, math.sin(e), math.cos(e)]])
        mats.append(rx @ rz)
    return torch.stack(mats)


def rotate(centres: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """(B, M, 3) centres, (V, 3, 3) rotations -> (B, V, M, 3) rotated centres."""
    return torch.einsum("vij,bmj->bvmi", rotations.to(centres), centres)


def project_1d(centres: torch.Tensor, rotations: torch.Tensor, num_positions: int, extent: float = 1.0):
    """Project centres onto each view's line and scale to the sequence positions.

    Args:
        centres: (B, M, 3) float xyz within radius ``extent``.
        rotations: (V, 3, 3) view rotations.
        num_positions: P, the frozen model's position-table length.

    Returns:
        (B, V, M) float positions in [0, P - 1]: -extent maps to 0, +extent to P - 1.
    """
    s = rotate(centres, rotations)[..., 0]
    return ((s / extent + 1.0) * 0.5).clamp(0.0, 1.0) * (num_positions - 1)


def project_2d(centres: torch.Tensor, rotations: torch.Tensor, grid_size: int, extent: float = 1.0,
               camera_distance: float = 2.0):
    """Perspective-project centres into each view's image plane, in patch-grid units.

    A pinhole camera sits ``camera_distance`` behind the origin on -z' and looks down +z'. The focal
    length ``camera_distance - extent`` maps the whole sphere of radius ``extent`` into the image.

    Args:
        centres: (B, M, 3) float xyz within radius ``extent``.
        rotations: (V, 3, 3) view rotations.
        grid_size: G, patches per side of the frozen ViT's position grid.

    Returns:
        (B, V, M, 2) float [col, row] in [0, G - 1] (col from x', row from y').
    """
    if camera_distance <= extent:
        raise ValueError(f"camera_distance must exceed extent={extent}, got {camera_distance}")
    p = rotate(centres, rotations)
    focal = camera_distance - extent
    uv = focal * p[..., :2] / (p[..., 2:3] + camera_distance)
    return ((uv / extent + 1.0) * 0.5).clamp(0.0, 1.0) * (grid_size - 1)


def interpolate_1d(table: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of a position table at fractional positions.

    Args:
        table: (P, C) position embedding.
        pos: (...,) float positions in [0, P - 1].

    Returns:
        (..., C) interpolated embeddings; integer positions give the table rows exactly.
    """
    lo = pos.floor().long().clamp(0, table.shape[0] - 1)
    hi = (lo + 1).clamp(max=table.shape[0] - 1)
    w = (pos - lo.to(pos.dtype)).unsqueeze(-1)
    return table[lo] * (1.0 - w) + table[hi] * w


def interpolate_2d(grid: torch.Tensor, colrow: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of a patch position grid.

    Args:
        grid: (G, G, C) patch position embedding, indexed [row, col].
        colrow: (..., 2) float [col, row] in [0, G - 1].

    Returns:
        (..., C) interpolated embeddings; integer coordinates give the grid cells exactly.
    """
    g = grid.shape[0]
    lead = colrow.shape[:-1]
    # grid_sample with align_corners=True maps -1/+1 to the centres of the first/last cells.
    norm = colrow.reshape(1, -1, 1, 2) / (g - 1) * 2.0 - 1.0
    img = grid.permute(2, 0, 1).unsqueeze(0).to(colrow.dtype)  # (1, C, G, G)
    out = F.grid_sample(img, norm, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0, :, :, 0].t().reshape(*lead, grid.shape[-1])


class VirtualProjection(nn.Module):
    """Per-view projection of token centres, averaged position encoding and virtual cell ids.

    Args:
        mode: '1d' (sequence model) or '2d' (ViT).
        num_views: V virtual views (the paper uses six).
        cells_per_axis: the grid is cut into this many virtual cells per axis; tokens sharing a cell
            in a view are aggregated by the guided adapter.
        extent: radius the centres are normalised to.
    """

    def __init__(self, mode: str, num_views: int = 6, cells_per_axis: int = 4, extent: float = 1.0,
                 camera_distance: float = 2.0):
        super().__init__()
        if mode not in ("1d", "2d"):
            raise ValueError(f"mode must be '1d' or '2d', got {mode!r}")
        self.mode = mode
        self.cells_per_axis = cells_per_axis
        self.extent = extent
        self.camera_distance = camera_distance
        self.register_buffer("rotations", virtual_view_rotations(num_views), persistent=False)

    @property
    def num_views(self) -> int:
        return self.rotations.shape[0]

    def forward(self, centres: torch.Tensor, table: torch.Tensor):
        """Encode token centres with the frozen model's positions.

        Args:
            centres: (B, M, 3) float xyz.
            table: '1d': (P, C) position embedding; '2d': (G, G, C) patch position grid.

        Returns:
            pos_embed: (B, M, C) view-averaged position encoding.
            cells: (B, V, M) int64 virtual cell id of each token in each view, in
                [0, cells_per_axis ** (1 or 2)).
        """
        n = self.cells_per_axis
        if self.mode == "1d":
            pos = project_1d(centres, self.rotations, table.shape[0], self.extent)
            emb = interpolate_1d(table, pos)  # (B, V, M, C)
            cells = (pos / (table.shape[0] - 1) * n).long().clamp(max=n - 1)
        else:
            colrow = project_2d(centres, self.rotations, table.shape[0], self.extent, self.camera_distance)
            emb = interpolate_2d(table, colrow)
            cr = (colrow / (table.shape[0] - 1) * n).long().clamp(max=n - 1)
            cells = cr[..., 1] * n + cr[..., 0]
        return emb.mean(dim=1), cells
