# DSVT-P on nuScenes (paper scale, Wang et al. CVPR 2023, after its public nuScenes config): 0.3 x 0.3 x 8 m
# pillars over +-54 m (360 x 360), dynamic VFE (128, 128), DSVT d = 128, 8 heads, FFN 256, 4 blocks of
# rotated-set attention with sets of tau = 90 in 30 x 30 windows, config 1 the same size (hybrid factor 1)
# shifted by (15, 15); then a 2D backbone (strides 1, 2, 4; 128, 128, 256) + FPN to stride 2 and the
# velocity-regressing CenterPoint head; lr 5e-3, 20 epochs (all three from _base_/nuscenes_centerpoint.py).
_base_ = ['../_base_/nuscenes_centerpoint.py']
point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
voxel_size = [0.3, 0.3, 8.0]
model = dict(
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(128, 128), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    backbone3d=dict(type='DSVT', in_channels=128, channels=128, num_heads=8, ffn_channels=256, num_blocks=4,
                    window_shape=(30, 30), set_size=90, hybrid_factor=(1, 1, 1), shift=(0, 15, 15)),
    head=dict(voxel_size=voxel_size),
)
