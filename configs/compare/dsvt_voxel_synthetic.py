# Backbone comparison (equal budget), DSVT-V on the spconv baseline's 3D grid (0.32 x 0.32 x 0.75 m,
# 8 z-slices): stage 1 on 8 x 12 x 12 windows, attention pooling of z by 4, stage 2 on 2 x 12 x 12 windows
# (sets of 36, config-1 windows 2x wider and shifted), so 2 slices x 64 channels reach the BEV: the same
# 128-channel map as the spconv baseline's.
_base_ = ['./_base_voxel_grid.py']
model = dict(
    backbone3d=dict(type='DSVT', in_channels=64, channels=64, num_heads=4, ffn_channels=128, num_blocks=1,
                    window_shape=[(8, 12, 12), (2, 12, 12)], set_size=36, hybrid_factor=(1, 2, 2),
                    shift=(0, 6, 6), pool_strides=((4, 1, 1),)),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=2),
    backbone2d=dict(in_channels=128),
)
