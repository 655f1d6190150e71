# Backbone comparison (equal budget), ScatterFormer on the spconv baseline's 3D grid (0.32 x 0.32 x 0.75 m,
# 8 z-slices): SLA over 12 x 12 windows spanning the whole height, 3x3x3 / 1x7 / 7x1 depthwise
# cross-window convs, two blocks, then attention pooling of each pillar's voxels to one BEV cell.
_base_ = ['./_base_voxel_grid.py']
model = dict(
    backbone3d=dict(type='ScatterFormer', in_channels=64, channels=64, num_heads=4, num_blocks=2,
                    window_shape=(12, 12), kernel=7, ffn_channels=128, grid_depth=8, pool_to_bev=True),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=1),
    backbone2d=dict(in_channels=64),
)
