# Backbone comparison (equal budget): FlatFormer on 0.32 m pillars in front of the default pillar
# detector's 2D backbone and head (../centerpoint_pillar_synthetic.py: same data, range, schedule).
# One block = four group-attention layers (x, x-shifted, y, y-shifted), windows 13 x 13, groups of 144.
_base_ = ['../centerpoint_pillar_synthetic.py']
# The comparison's budget: 6 epochs of the 160 simulated training frames for every model (half the default
# detector's schedule, so that all four fit a CPU afternoon).
max_epochs = 6
param_scheduler = [
    dict(type='OneCycleLR', eta_max=3e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
model = dict(
    voxel_encoder=dict(feat_channels=(32, 64)),
    backbone3d=dict(type='FlatFormer', in_channels=64, channels=64, num_heads=4, num_blocks=1,
                    window_shape=(13, 13), group_size=144, ffn_channels=128),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=1),
    backbone2d=dict(in_channels=64),
)
