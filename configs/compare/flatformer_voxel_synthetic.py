# Backbone comparison (equal budget), FlatFormer on the spconv baseline's 3D grid (0.32 x 0.32 x 0.75 m,
# 8 z-slices): groups of 144 voxels in 13 x 13 windows (the partition orders columns; a column's voxels
# stay together), one block of four layers, then 8 slices x 64 channels into the BEV.
_base_ = ['./_base_voxel_grid.py']
model = dict(
    backbone3d=dict(type='FlatFormer', in_channels=64, channels=64, num_heads=4, num_blocks=1,
                    window_shape=(13, 13), group_size=144, ffn_channels=128),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=8),
    backbone2d=dict(in_channels=512),
)
