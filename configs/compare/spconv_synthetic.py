# Backbone comparison (equal budget), spconv baseline: the default pillar detector's data, range, 2D
# backbone, head and schedule (../centerpoint_pillar_synthetic.py), with a sparse-conv 3D stage in front.
# 3D grid 0.32 x 0.32 x 0.75 m (8 z-slices over 6 m); the sparse convs pool only height (8 -> 4, then 2 in
# the output conv), so the BEV map keeps the 256 x 256 grid every model of the comparison uses. (16 slices
# and three stages cost 6.6 s per 2-frame iteration on one core, 3.4x this one: spconv's CPU path is slow.)
_base_ = ['./_base_compare.py']
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
