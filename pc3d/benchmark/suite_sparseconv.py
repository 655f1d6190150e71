"""Submanifold sparse convs of the transformers' conv stem and position encodings: forward + backward on the
voxels of a 2-frame simulated batch on an 8-slice 3D grid (0.32 x 0.32 x 0.75 m over +-40.96 m, 64 channels,
3x3x3 kernel).

pc3d's convs add each kernel offset's occupied neighbours only (``sparse_depthwise``); the baseline, timed in
the same run, gathers all K neighbour rows of every voxel (empty cells read a zero row), the direct way to
write a submanifold conv in PyTorch. Both give the same outputs and gradients (checked before timing).
"""
from pc3d.benchmark.harness import Case

SUITE = "sparseconv"
VOXEL_SIZE = (0.32, 0.32, 0.75)
PC_RANGE = (-40.96, -40.96, -2.0, 40.96, 40.96, 4.0)
CHANNELS = 64


def batch_voxels(frames: int = 2):
    """(coords (V, 4) int32, spatial_shape) of ``frames`` simulated frames on the 8-slice grid."""
    import torch

    from pc3d.datasets.simulator import simulate_frame
    from pc3d.models.voxelizers import DynamicVoxelizer

    voxelizer = DynamicVoxelizer(VOXEL_SIZE, PC_RANGE)
    points = []
    for b in range(frames):
        pts = torch.as_tensor(simulate_frame(b)["points"], dtype=torch.float32)[:, :5]
        points.append(torch.cat([torch.full((pts.shape[0], 1), float(b)), pts], dim=1))
    with torch.no_grad():
        voxels = voxelizer(torch.cat(points), frames)
    return voxels["coords"], tuple(voxels["spatial_shape"])


def gather_all(feats, table, weight, depthwise: bool):
    """Baseline: every voxel's K neighbour rows (a zero row for empty cells), then one product."""
    import torch

    padded = torch.cat([feats, feats.new_zeros(1, feats.shape[1])], dim=0)
    gathered = padded[table]  # (V, K, C_in)
    if depthwise:
        return (gathered * weight).sum(dim=1)
    return gathered.reshape(table.shape[0], -1) @ weight.reshape(-1, weight.shape[2])


def cases():
    import torch

    from pc3d.models.backbones3d.sparse_depthwise import DepthwiseSubmConv, SubmConv, neighbor_table

    coords, shape = batch_voxels()
    torch.manual_seed(0)
    feats = torch.randn(coords.shape[0], CHANNELS)
    for conv in (SubmConv(CHANNELS, CHANNELS, (3, 3, 3)), DepthwiseSubmConv(CHANNELS, (3, 3, 3))):
        depthwise = isinstance(conv, DepthwiseSubmConv)
        if depthwise:  # the baseline has no bias: compare the convs without one
            conv.bias.requires_grad_(False)
        table = neighbor_table(coords, shape, conv.offsets)
        occupied = float((table < coords.shape[0]).float().mean())

        def step(forward, conv=conv):
            x = feats.clone().requires_grad_(True)
            conv.zero_grad(set_to_none=True)
            out = forward(x)
            out.square().sum().backward()
            return out.detach(), x.grad, conv.weight.grad

        def impl(conv=conv, table=table):
            return step(lambda x: conv(x, table))

        def baseline(conv=conv, table=table, depthwise=depthwise):
            return step(lambda x: gather_all(x, table, conv.weight, depthwise))

        def check(a, b):
            for name, u, v in zip(("output", "input grad", "weight grad"), a, b):
                torch.testing.assert_close(u, v, atol=1e-3, rtol=1e-4, msg=lambda m: f"{name}: {m}")

        kind = "depthwise" if depthwise else "full"
        yield Case(suite=SUITE, name=f"{kind} 3x3x3 C={CHANNELS} fwd+bwd", impl_name=type(conv).__name__, impl=impl,
                   baseline_name="gather all K rows", baseline=baseline, check=check, repeats=5, warmup=1,
                   extra=dict(voxels=int(coords.shape[0]), occupied_neighbours=round(occupied, 3)))
