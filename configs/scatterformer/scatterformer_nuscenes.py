# ScatterFormer on nuScenes (paper scale, He et al. ECCV 2024; the official
# tools/cfgs/nuscenes_models/scatterformer.yaml): 0.3 x 0.3 x 0.2 m voxels over +-54 m x [-5, 3] m
# (360 x 360 x 40), dynamic VFE (64, 64), then the official 3D backbone (FEATURE_DIM 128, WIN_SIZE 20):
# spconv stem, 2 stages x 3 layers of scattered linear attention (4 heads, 20 x 20 windows over the whole
# height, cross-window depthwise convs 3x3x3, 1x21, 21x1, identity), a stride-2 sparse conv between the
# stages, attention pooling of 10 z-slices into a 180 x 180 BEV (stride 2); then the 2D backbone (strides 1,
# 2, 4) + FPN at that stride and the velocity-regressing CenterPoint head (_base_/nuscenes_centerpoint.py); lr 6e-3,
# weight decay 0.03, grad clip 10.
_base_ = ['../_base_/nuscenes_centerpoint.py']
point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
voxel_size = [0.3, 0.3, 0.2]
model = dict(
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(64, 64), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    backbone3d=dict(type='ScatterFormer', in_channels=64, channels=128, num_heads=4, num_layers=(3, 3),
                    window_size=20, grid_depth=40),
    # The backbone's BEV is already at stride 2: the FPN keeps the 2D backbone's first resolution.
    neck=dict(upsample_strides=(1, 2, 4)),
    head=dict(voxel_size=voxel_size),
)
lr_max = 6e-3
optim_wrapper = dict(optimizer=dict(lr=lr_max / 10, weight_decay=0.03), clip_grad=dict(max_norm=10))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr_max, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=20),
]
