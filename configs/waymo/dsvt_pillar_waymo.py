# DSVT-P on Waymo (paper scale, Wang et al. CVPR 2023; DESIGN.md): 0.32 x 0.32 x 6 m pillars over
# +-74.88 m (468 x 468), dynamic VFE (192, 192), DSVT d = 192, 8 heads, FFN 384, 4 blocks of rotated-set
# attention with sets of tau = 36; windows 12 x 12 unshifted, then 24 x 24 (hybrid factor 2) shifted by
# (6, 6, 0); then a 2D backbone (strides 1, 2, 4; 128, 128, 256) + FPN and a stride-1 CenterPoint head.
# Training recipe (data pipeline, GT sampling, optimiser, schedule, hooks): the official config's.
_base_ = ['../_base_/datasets/waymo_dsvt.py', '../_base_/schedules/openpcdet_adam_onecycle_24e.py']
point_cloud_range = [-74.88, -74.88, -2.0, 74.88, 74.88, 4.0]
voxel_size = [0.32, 0.32, 6.0]
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(192, 192), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    backbone3d=dict(type='DSVT', in_channels=192, channels=192, num_heads=8, ffn_channels=384, num_blocks=4,
                    window_shape=(12, 12), set_size=36, hybrid_factor=(1, 2, 2), shift=(0, 6, 6)),
    bev=dict(type='BEVScatter', in_channels=192, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=192, out_channels=(128, 128, 256), layer_nums=(1, 2, 2),
                    layer_strides=(1, 2, 2)),
    neck=dict(type='SECONDFPN', in_channels=(128, 128, 256), out_channels=(128, 128, 128),
              upsample_strides=(1, 2, 4)),
    head=dict(type='CenterHead', in_channels=384, num_classes=3, pc_range=point_cloud_range, voxel_size=voxel_size,
              out_size_factor=1, shared_channels=64, head_channels=64, loss_weights=dict(heatmap=1.0, bbox=2.0),
              min_radius=2, test_cfg=dict(score_threshold=0.1, pre_max_size=4096, post_max_size=500,
                                          nms_iou_threshold=[0.7, 0.6, 0.55])),
)
