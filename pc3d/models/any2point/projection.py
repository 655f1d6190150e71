"""3D-to-any virtual projection: place 3D token centres in a frozen model's own 1D/2D position grid.

A frozen language model knows positions 0..P-1 on a line; a frozen ViT knows a G x G patch grid. We never
feed it images or words: every token centre is projected, per virtual view, onto that grid, the model's own
position embedding is read there by (bi)linear interpolation, and the views are averaged. The projected
coordinates also define the virtual cells in which the guided adapter aggregates tokens (adapters.py).

The defaults are the published Any2Point settings:

- 2D (DINOv2/ViT): six pinhole cameras on the faces of a cube (:func:`cube_view_rotations`), each at
  distance 1.8 from the origin, focal length 1, looking at the origin. A camera-frame point (X, Y, Z)
  lands on pixel ``((X / Z + 1) * R / 2 - 0.5, (Y / Z + 1) * R / 2 - 0.5)`` modulo R, where R is the image
  size of the frozen ViT (518 for DINOv2: 37 patches of 14 px); the -0.5 is the centre of the single-pixel
  footprint and the modulo wraps points that leave the image back in instead of clamping them. The position
  grid is sampled bilinearly with ``align_corners=True`` (pixel 0 -> patch 0, pixel R - 1 -> patch G - 1)
  and zero padding outside. Virtual cells are squares of 26 px (20 x 20 cells over 518 px).
- 1D (BERT-like): the six views rotate the centres, each is projected on the direction (-1, 0, 1) / sqrt(2)
  relative to its sample's mean centre, min-max normalised per sample and view to [0, L], shifted by -0.5
  and wrapped modulo L (L positions of the table), then read by linear interpolation at ``pos * (L - 1) / L``.
  Virtual cells are runs of 2 positions.

Two behaviours of the published code are options, off by default, because they make a token's encoding not
its own: the 2D code reshapes the (B*V, C, M) lookup without a transpose (``official_layout``), and the 1D code
scales positions by the range of the whole batch (``official_1d_scale``). With them on, the outputs equal the
published ones (tests/test_official_any2point.py, tests/test_any2point.py).
"""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def euler_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from (x, y, z) Euler angles: ``R = R_x(a_x) @ R_y(a_y) @ R_z(a_z)``.

    Args:
        angles: (V, 3) float radians.

    Returns:
        (V, 3, 3) rotation matrices (same dtype as ``angles``).
    """
    if angles.dim() != 2 or angles.shape[-1] != 3:
        raise ValueError(f"angles must be (V, 3), got {tuple(angles.shape)}")
    cx, cy, cz = angles.cos().unbind(-1)
    sx, sy, sz = angles.sin().unbind(-1)
    zero, one = torch.zeros_like(cx), torch.ones_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).view(-1, 3, 3)
    return rx @ ry @ rz


def cube_view_rotations() -> torch.Tensor:
    """The six published views: cameras on the six faces of a cube around the object.

    Euler angles (x, y, z) = (k pi/2, 0, pi/2) for k = 0..3 (four cameras around the x axis), then
    (0, -pi/2, pi/2) and (0, pi/2, pi/2) (the two caps). A centre ``p`` (row vector) goes to the camera
    frame as ``p @ R^T`` = ``R @ p``; the camera then looks down +z from z = -distance.

    Returns:
        (6, 3, 3) float32 rotation matrices R (world -> camera).
    """
    h = math.pi / 2
    angles = torch.tensor([[0.0, 0.0, h], [h, 0.0, h], [2 * h, 0.0, h], [3 * h, 0.0, h],
                           [0.0, -h, h], [0.0, h, h]], dtype=torch.float32)
    return euler_to_matrix(angles)


def rotate(centres: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """(B, M, 3) centres, (V, 3, 3) rotations R -> (B, V, M, 3) camera-frame centres ``R @ p``."""
    return torch.einsum("bmj,vij->bvmi", centres, rotations.to(centres))


def project_2d(centres: torch.Tensor, rotations: torch.Tensor, resolution: int, camera_distance: float = 1.8,
               focal: float = 1.0, pixel_offset: float = -0.5, wrap: bool = True) -> torch.Tensor:
    """Perspective projection of the centres into each view's image, in pixels of a ``resolution`` image.

    Args:
        centres: (B, M, 3) float xyz (normalised to the unit sphere).
        rotations: (V, 3, 3) world -> camera rotations.
        resolution: R, image side in pixels (the frozen ViT's input size, e.g. 518).
        camera_distance: the camera sits at z = -camera_distance of the camera frame.
        focal: focal length in half-image units (1: the image spans tan = +-1).
        pixel_offset: added to the pixel coordinates (-0.5: centre of a one-pixel footprint).
        wrap: coordinates modulo R (published); False clamps them to [0, R - 1].

    Returns:
        (B, V, M, 2) float [x, y] pixels in [0, R) (x from the camera's X: the image column).
    """
    p = rotate(centres, rotations)
    # The 1e-12 keeps a point exactly on the camera plane finite (the published code adds it too).
    xy = focal * p[..., :2] / (p[..., 2:3] + camera_distance + 1e-12)
    pix = (xy + 1.0) * resolution / 2.0 + pixel_offset
    return torch.remainder(pix, resolution) if wrap else pix.clamp(0.0, resolution - 1.0)


def interpolate_2d(grid: torch.Tensor, pixels: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear read of a patch position grid at image pixels, zero outside the grid.

    Pixel 0 is the centre of patch 0 and pixel R - 1 the centre of patch G - 1 (``align_corners=True``);
    a pixel beyond R - 1 (only (R - 1, R) can occur after wrapping) blends towards zero.

    Args:
        grid: (G, G, C) patch position embedding, indexed [row, col].
        pixels: (..., 2) float [x, y] pixels (x: column).
        resolution: R.

    Returns:
        (..., C) interpolated embeddings.
    """
    lead = pixels.shape[:-1]
    norm = pixels.reshape(1, -1, 1, 2) * (2.0 / (resolution - 1)) - 1.0
    img = grid.permute(2, 0, 1).unsqueeze(0).to(pixels.dtype)  # (1, C, G, G)
    out = F.grid_sample(img, norm, mode="bilinear", padding_mode="zeros", align_corners=True)  # (1, C, K, 1)
    return out[0, :, :, 0].t().reshape(*lead, grid.shape[-1])


def project_1d(centres: torch.Tensor, rotations: torch.Tensor, length: int,
               direction: Sequence[float] = (-1.0, 0.0, 1.0), pixel_offset: float = -0.5,
               wrap: bool = True) -> torch.Tensor:
    """Project the centres of each view on a line and spread them over ``length`` sequence positions.

    Per sample and view: ``s = (R p - mean_m R p_m) . d / |d|``, ``pos = (s - min s) / (max s - min s) * L
    + pixel_offset``, modulo L when ``wrap`` (the published code: so the lowest centre, at -0.5, wraps to
    L - 0.5), else clamped to [0, L - 1].

    Args:
        centres: (B, M, 3) float xyz.
        rotations: (V, 3, 3) rotations.
        length: L, positions of the line.
        direction: the line's direction in the rotated frame.

    Returns:
        (B, V, M) float positions in [0, L).
    """
    d = torch.as_tensor(direction, dtype=centres.dtype, device=centres.device)
    if d.shape != (3,) or float(d.norm()) == 0.0:
        raise ValueError(f"direction must be a non-zero 3-vector, got {direction}")
    p = rotate(centres, rotations)
    s = (p - p.mean(dim=2, keepdim=True)) @ (d / d.norm())  # (B, V, M)
    lo, hi = s.amin(dim=2, keepdim=True), s.amax(dim=2, keepdim=True)
    # A sample whose centres all coincide on the line has no spread: it sits at position 0.
    pos = (s - lo) / (hi - lo).clamp_min(torch.finfo(s.dtype).tiny) * length + pixel_offset
    return torch.remainder(pos, length) if wrap else pos.clamp(0.0, length - 1.0)


def interpolate_1d(table: torch.Tensor, pos: torch.Tensor, scale: Optional[float] = None,
                   official_weights: bool = False) -> torch.Tensor:
    """Linear interpolation of a position table at ``pos * scale``.

    Args:
        table: (P, C) position embedding.
        pos: (...,) float positions.
        scale: multiplier mapping positions to table rows; None: 1.
        official_weights: the published weights ``ceil(x) - x`` and ``x - floor(x)`` of the rows clamped to
            [0, P - 1]: both zero when ``x`` is an integer (that token gets a zero embedding), and a linear
            extrapolation of the last row beyond P - 1; False: ``1 - w`` and ``w`` with ``w = x - floor(x)``.

    Returns:
        (..., C) interpolated embeddings (rows clamped to [0, P - 1]).
    """
    x = pos if scale is None else pos * scale
    last = table.shape[0] - 1
    lo = x.floor().clamp(0, last)
    hi = x.ceil().clamp(0, last) if official_weights else (lo + 1.0).clamp(max=last)
    # The published weights come from the clamped rows: beyond the last row they extrapolate linearly.
    w_lo = (hi - x).unsqueeze(-1) if official_weights else (1.0 - (x - lo)).unsqueeze(-1)
    w_hi = (x - lo).unsqueeze(-1)
    return table[lo.long()] * w_lo + table[hi.long()] * w_hi


class VirtualProjection(nn.Module):
    """Per-view projection of token centres, the view-averaged position encoding, and virtual cell ids.

    Args:
        mode: '1d' (sequence model) or '2d' (ViT).
        num_views: 6 (the published cube views); other counts are refused.
        camera_distance, focal, pixel_offset, wrap: see :func:`project_2d` (``pixel_offset`` and ``wrap`` also
            apply to :func:`project_1d`).
        cell_size: side of a virtual cell in pixels (2D, published 26) or positions (1D, published 2).
        direction: the 1D line direction.
        length: 1D positions used (None: the whole table); the published language model (CLIP) has 77.
        official_layout: reshape the (B*V, C, M) interpolation result to (B, V, M, C) with a raw ``reshape``
            as the published 2D code does, which mixes the channel and token axes: each token then gets a
            slice of channels of all tokens instead of its own embedding. Only for equality with the
            published outputs; False gives every token its own view-averaged embedding.
        official_1d_scale: scale the 1D positions by (L - 1) / (max - min of all positions in the batch) and
            use the published interpolation weights (see :func:`interpolate_1d`), as the published 1D code
            does; the batch-wide range makes a sample's encoding depend on the rest of its batch. False:
            the fixed scale (L - 1) / L (the same whenever the batch's positions span [0, L)).
    """

    def __init__(self, mode: str, num_views: int = 6, camera_distance: float = 1.8, focal: float = 1.0,
                 pixel_offset: float = -0.5, wrap: bool = True, cell_size: Optional[float] = None,
                 direction: Sequence[float] = (-1.0, 0.0, 1.0), length: Optional[int] = None,
                 official_layout: bool = False, official_1d_scale: bool = False):
        super().__init__()
        if mode not in ("1d", "2d"):
            raise ValueError(f"mode must be '1d' or '2d', got {mode!r}")
        if num_views != 6:
            raise ValueError(f"num_views: the published projection has 6 cube views, got {num_views}")
        if camera_distance <= 1.0:
            raise ValueError(f"camera_distance must exceed the unit sphere's radius 1, got {camera_distance}")
        self.mode = mode
        self.camera_distance = camera_distance
        self.focal = focal
        self.pixel_offset = pixel_offset
        self.wrap = wrap
        self.cell_size = float(cell_size if cell_size is not None else (26.0 if mode == "2d" else 2.0))
        if self.cell_size <= 0:
            raise ValueError(f"cell_size must be > 0, got {cell_size}")
        self.direction = tuple(float(v) for v in direction)
        self.length = length
        self.official_layout = official_layout
        self.official_1d_scale = official_1d_scale
        self.register_buffer("rotations", cube_view_rotations(), persistent=False)

    @property
    def num_views(self) -> int:
        return self.rotations.shape[0]

    def line_length(self, table: torch.Tensor) -> int:
        """1D: L, the positions of the (P, C) table the line spans (``length``, or P)."""
        length = self.length if self.length is not None else table.shape[0]
        if not 2 <= length <= table.shape[0]:
            raise ValueError(f"length must be in [2, {table.shape[0]}] (the position table's rows), got {length}")
        return length

    def cells_per_axis(self, extent: int) -> int:
        """Virtual cells per axis over ``extent`` pixels (2D) or positions (1D): ceil(extent / cell_size)
        (20 for 518 px and 26 px cells)."""
        return int(math.ceil(extent / self.cell_size))

    def positions(self, centres: torch.Tensor, table: torch.Tensor, resolution: Optional[int] = None):
        """Projected coordinates: '2d' (B, V, M, 2) [x, y] pixels in [0, R); '1d' (B, V, M) positions in [0, L)."""
        if self.mode == "2d":
            if resolution is None:
                raise ValueError("2d projection needs resolution (the frozen ViT's image size)")
            return project_2d(centres, self.rotations, resolution, self.camera_distance, self.focal,
                              self.pixel_offset, self.wrap)
        return project_1d(centres, self.rotations, self.line_length(table), self.direction, self.pixel_offset,
                          self.wrap)

    def forward(self, centres: torch.Tensor, table: torch.Tensor, resolution: Optional[int] = None):
        """Encode token centres with the frozen model's positions.

        Args:
            centres: (B, M, 3) float xyz.
            table: '1d': (P, C) position embedding; '2d': (G, G, C) patch position grid.
            resolution: '2d' only: R, the image size in pixels the grid covers (G * patch size).

        Returns:
            pos_embed: (B, M, C) view-averaged position encoding.
            per_view: (B, V, M, C) the encoding in each view (before the mean).
            cells: (B, V, M) int64 virtual cell of each token in each view, in [0, n^2) (2D, row-major:
                ``floor(x / s) + floor(y / s) * n``) or [0, n) (1D), n = :meth:`cells_per_axis`.
            coords: the projected coordinates of :meth:`positions`.
        """
        b, m = centres.shape[:2]
        coords = self.positions(centres, table, resolution)
        if self.mode == "2d":
            n = self.cells_per_axis(resolution)
            flat = interpolate_2d(table, coords, resolution)  # (B, V, M, C)
            if self.official_layout:
                # The published code holds (B*V, C, M) here and reshapes it without a transpose.
                flat = flat.reshape(b * self.num_views, m, -1).transpose(1, 2).reshape(b, self.num_views, m, -1)
            ij = (coords / self.cell_size).floor().long()
            cells = ij[..., 0] + ij[..., 1] * n
        else:
            length = self.line_length(table)
            if self.official_1d_scale:
                scale = (length - 1) / (coords.max() - coords.min())
            else:
                scale = (length - 1) / length
            flat = interpolate_1d(table, coords, scale, official_weights=self.official_1d_scale)
            cells = (coords / self.cell_size).floor().long()
        return flat.mean(dim=1), flat, cells, coords
