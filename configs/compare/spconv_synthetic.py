# Backbone comparison (equal budget), spconv baseline: the default pillar detector's data, range, 2D
# backbone, head and schedule (../centerpoint_pillar_synthetic.py), with a sparse-conv 3D stage in front.
# 3D grid 0.32 x 0.32 x 0.75 m (8 z-slices over 6 m); the sparse convs pool only height (8 -> 4, then 2 in
# the output conv), so the BEV map keeps the 256 x 256 grid every model of the comparison uses. (16 slices
# and three stages cost 6.6 s per 2-frame iteration on one core, 3.4x this one: spconv's CPU path is slow.)
_base_ = ['../centerpoint_pillar_synthetic.py']
# The comparison's budget: 6 epochs of the 160 simulated training frames for every model (half the default
# detector's schedule, so that all four fit a CPU afternoon).
max_epochs = 6
param_scheduler = [
    dict(type='OneCycleLR', eta_max=3e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
voxel_size = [0.32, 0.32, 0.75]
point_cloud_range = [-40.96, -40.96, -2.0, 40.96, 40.96, 4.0]
model = dict(
    voxelizer=dict(voxel_size=voxel_size),
    voxel_encoder=dict(feat_channels=(32,), voxel_size=voxel_size),
    backbone3d=dict(type='SparseConvBackbone', in_channels=32, stage_channels=(32, 64), stage_blocks=(1, 1),
                    stage_strides=((2, 1, 1),), out_channels=64),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=2),
    backbone2d=dict(in_channels=128),
)
