"""torch.export of the FlatFormer inference path (the official model's partition, last-group rule and sinusoidal
position encoding), checked against eager on real LiDAR scans."""
import torch

from pc3d.models import DynamicVoxelizer
from pc3d.models.backbones3d import FlatFormer
from pc3d.models.backbones3d.export import export_flatformer
from pc3d.models.voxel_encoders import DynamicVFE

PC_RANGE = [-40.96, -40.96, -3.0, 40.96, 40.96, 3.0]
VOXEL = [0.32, 0.32, 6.0]


def encode(scan, vfe, voxelizer):
    """(N, 5) scan -> (feats (V, C), coords (V, 4) int32) through the dynamic voxelizer and VFE."""
    points = torch.cat([torch.zeros(scan.shape[0], 1), scan], dim=1)
    with torch.no_grad():
        voxels = vfe(voxelizer(points, 1))
    return voxels.feats, voxels.coords, voxels.spatial_shape


def test_exported_flatformer_matches_eager_on_real_scans(real_scans):
    torch.manual_seed(0)
    voxelizer = DynamicVoxelizer(VOXEL, PC_RANGE)
    vfe = DynamicVFE(5, (32, 32), VOXEL, PC_RANGE).eval()
    backbone = FlatFormer(32, num_heads=4, num_blocks=1, window_shape=(13, 13), group_size=144).eval()
    scans = list(real_scans.values())
    feats, coords, shape = encode(scans[0], vfe, voxelizer)
    program = export_flatformer(backbone, shape, feats, coords)
    # The partition op survives export as one call (not traced into something data-specific).
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert any("flat_window_partition" in t for t in targets), targets
    exported = program.module()
    # Another real scan with a different voxel count: the voxel dimension must be symbolic.
    for scan in scans[:2]:
        feats, coords, _ = encode(scan, vfe, voxelizer)
        with torch.no_grad():
            expected = backbone.forward_features(feats, coords, shape)
            got = exported(feats, coords)
        assert got.shape == expected.shape == (feats.shape[0], 32)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
