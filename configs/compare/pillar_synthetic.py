# Backbone comparison, control: no 3D stage at all on the transformers' 0.32 m pillars (their two-layer
# pillar encoder straight into the BEV). A 3D stage has to beat this to be worth its cost.
_base_ = ['./_base_compare.py']
model = dict(
    voxel_encoder=dict(feat_channels=(32, 64)),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=1),
    backbone2d=dict(in_channels=64),
)
