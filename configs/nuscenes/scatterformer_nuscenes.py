# ScatterFormer on nuScenes (paper scale, He et al. ECCV 2024, after its public nuScenes config): 0.3 x 0.3 x
# 0.2 m voxels over +-54 m x [-5, 3] m (360 x 360 x 40), dynamic VFE (64, 64), ScatterFormer C = 128, 8 heads,
# 20 x 20 windows over the whole height (odd blocks shifted), cross-window depthwise convs (3x3x3, 1x13,
# 13x1, identity), 4 blocks, attention pooling of each pillar to BEV; then a 2D backbone (strides 1, 2, 4)
# + FPN to stride 2 and the velocity-regressing CenterPoint head (_base_nuscenes.py); lr 6e-3, weight decay
# 0.03, grad clip 10.
_base_ = ['./_base_nuscenes.py']
point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
voxel_size = [0.3, 0.3, 0.2]
model = dict(
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(64, 64), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    backbone3d=dict(type='ScatterFormer', in_channels=64, channels=128, num_heads=8, num_blocks=4,
                    window_shape=(20, 20), kernel=13, ffn_channels=256, grid_depth=40, pool_to_bev=True),
    head=dict(voxel_size=voxel_size),
)
lr_max = 6e-3
optim_wrapper = dict(optimizer=dict(lr=lr_max / 10, weight_decay=0.03), clip_grad=dict(max_norm=10))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr_max, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=20),
]
