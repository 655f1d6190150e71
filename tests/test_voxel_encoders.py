"""DynamicVFE (segment reductions over voxel-sorted points) against a plain scatter_reduce reference."""
import pytest
import torch

from pc3d.models import DynamicVoxelizer
from pc3d.models.voxel_encoders import DynamicVFE
from pc3d.models.voxel_encoders._geometry import voxel_centres

VOXEL = [0.32, 0.32, 6.0]
PC_RANGE = [-10.24, -10.24, -2.0, 10.24, 10.24, 4.0]


def reference_vfe(vfe, points, p2v, coords):
    """The VFE on unsorted points with torch's scatter_reduce: (V, C_out)."""
    n = coords.shape[0]

    def reduce(x, how):
        out = x.new_zeros(n, x.shape[1])
        return out.scatter_reduce(0, p2v[:, None].expand_as(x), x, how, include_self=False)

    parts = [points, points[:, :3] - voxel_centres(coords, vfe.voxel_size, vfe.pc_range)[p2v]]
    if vfe.with_cluster_center:
        parts.append(points[:, :3] - reduce(points[:, :3], "mean")[p2v])
    x = torch.cat(parts, dim=1)
    for i, layer in enumerate(vfe.layers):
        x = layer(x)
        if i < len(vfe.layers) - 1:
            x = torch.cat([x, reduce(x, "amax")[p2v]], dim=1)
    return reduce(x, {"max": "amax", "mean": "mean"}[vfe.reduce])


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_dynamic_vfe_equals_scatter_reference_forward_and_backward(reduce):
    gen = torch.Generator().manual_seed(0)
    # Dense clusters (many points per pillar) and isolated points (one-point pillars), two samples.
    centres = torch.rand(40, 2, generator=gen) * 18 - 9
    clustered = centres.repeat_interleave(50, 0) + torch.randn(2000, 2, generator=gen) * 0.2
    lone = torch.rand(100, 2, generator=gen) * 20 - 10
    xy = torch.cat([clustered, lone])
    n = len(xy)
    points = torch.cat([torch.randint(0, 2, (n, 1), generator=gen).float(), xy,
                        torch.rand(n, 1, generator=gen) * 5 - 1.5, torch.rand(n, 2, generator=gen)], dim=1)
    perm = torch.randperm(n, generator=gen)
    vox = DynamicVoxelizer(VOXEL, PC_RANGE)(points[perm], 2)
    counts = torch.bincount(vox["point2voxel"])
    assert (counts == 1).any() and (counts > 10).any()  # both kinds of pillar are exercised
    torch.manual_seed(0)
    vfe = DynamicVFE(5, (16, 16), VOXEL, PC_RANGE, reduce=reduce)
    pts = vox["points"].clone().requires_grad_(True)
    out = vfe(dict(vox, points=pts)).feats
    grad_out = torch.randn(out.shape, generator=gen)
    (out * grad_out).sum().backward()
    got_grad = pts.grad.clone()
    pts.grad = None
    ref = reference_vfe(vfe, pts, vox["point2voxel"], vox["coords"])
    (ref * grad_out).sum().backward()
    # BatchNorm's batch statistics are summed in another order: float32 rounding, not an error.
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_grad, pts.grad, atol=1e-4, rtol=1e-4)
    assert out.shape == (vox["coords"].shape[0], 16)
