# Backbone comparison (equal budget): FlatFormer on 0.32 m pillars in front of the default pillar
# detector's 2D backbone and head (../centerpoint_pillar_synthetic.py: same data, range, schedule).
# One block = four group-attention layers (x, x-shifted, y, y-shifted), windows 13 x 13, groups of 144.
_base_ = ['./_base_compare.py']
model = dict(
    voxel_encoder=dict(feat_channels=(32, 64)),
    backbone3d=dict(type='FlatFormer', in_channels=64, channels=64, num_heads=4, num_blocks=1,
                    window_shape=(13, 13), group_size=144, ffn_channels=128),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=1),
    backbone2d=dict(in_channels=64),
)
