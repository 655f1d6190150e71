"""Parent cells of sparse voxels on a coarser grid (DSVT's pooling between stages): which parent and which child
slot of it each voxel falls in."""
from typing import Sequence

import torch


def pool_coords(coords: torch.Tensor, spatial_shape, stride: Sequence[int]):
    """Parent cells of voxels.

    Args:
        coords: (V, 4) int32 (b, z, y, x).
        spatial_shape: (D, H, W) of the child grid.
        stride: (sz, sy, sx).

    Returns:
        parent_coords (P, 4) int32 (b, z, y, x) on the pooled grid, sorted by (b, z, y, x);
        parent (V,) int64 parent row of each voxel; child (V,) int64 slot in [0, sz*sy*sx);
        pooled_shape (D', H', W') = ceil(shape / stride).
    """
    sz, sy, sx = stride
    d, h, w = spatial_shape
    pd, ph, pw = -(-d // sz), -(-h // sy), -(-w // sx)
    c = coords.long()
    key = ((c[:, 0] * pd + c[:, 1] // sz) * ph + c[:, 2] // sy) * pw + c[:, 3] // sx
    uniq, parent = torch.unique(key, return_inverse=True)
    child = ((c[:, 1] % sz) * sy + c[:, 2] % sy) * sx + c[:, 3] % sx
    px = uniq % pw
    py = (uniq // pw) % ph
    pz = (uniq // (pw * ph)) % pd
    pb = uniq // (pw * ph * pd)
    parent_coords = torch.stack([pb, pz, py, px], dim=1).int()
    return parent_coords, parent, child, (pd, ph, pw)
