# DSVT-P on Waymo (paper scale, Wang et al. CVPR 2023): 0.32 x 0.32 x 6 m pillars over
# +-74.88 m (468 x 468), dynamic VFE (192, 192), DSVT d = 192, 8 heads, FFN 384, 4 blocks of rotated-set
# attention with sets of tau = 36; windows 12 x 12 unshifted, then 24 x 24 (hybrid factor 2) shifted by
# (6, 6, 0); then OpenPCDet's residual 2D backbone (strides 1, 2, 4; 128, 128, 256, each upsampled to 128
# channels at stride 1) and a stride-1 CenterPoint head with an IoU branch whose prediction rectifies the score
# (Haiyang-W/DSVT tools/cfgs/dsvt_models/dsvt_plain_1f_onestage.yaml; its checkpoints convert with
# tools/convert_checkpoint.py --from openpcdet).
# Training recipe (data pipeline, GT sampling, optimiser, schedule, hooks): the official config's.
_base_ = ['../_base_/datasets/waymo_dsvt.py', '../_base_/schedules/openpcdet_adam_onecycle_24e.py']
point_cloud_range = [-74.88, -74.88, -2.0, 74.88, 74.88, 4.0]
voxel_size = [0.32, 0.32, 6.0]
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynPillarVFE3D', in_channels=5, num_filters=(192, 192), voxel_size=voxel_size,
                       pc_range=point_cloud_range),
    backbone3d=dict(type='DSVT', in_channels=192, channels=192, num_heads=8, ffn_channels=384, num_blocks=4,
                    window_shape=(12, 12), set_size=36, hybrid_factor=(1, 2, 2), shift=(0, 6, 6)),
    bev=dict(type='PointPillarScatter3d', input_shape=(468, 468, 1), num_bev_features=192),
    backbone2d=dict(type='BaseBEVResBackbone', in_channels=192, layer_nums=(1, 2, 2), layer_strides=(1, 2, 2),
                    num_filters=(128, 128, 256), upsample_strides=(1, 2, 4), upsample_channels=(128, 128, 128)),
    neck=dict(type='IdentityNeck'),  # BaseBEVResBackbone upsamples and concatenates its stages itself
    head=dict(type='CenterHeadIoU', in_channels=384, num_classes=3, pc_range=point_cloud_range, voxel_size=voxel_size,
              out_size_factor=1, shared_channels=64, num_conv=2, num_hm_conv=2, with_iou=True,
              loss_weights=dict(heatmap=1.0, bbox=2.0, iou=1.0, iou_reg=2.0), max_objs=500, min_overlap=0.1,
              min_radius=2,
              test_cfg=dict(score_threshold=0.1, max_per_sample=500,
                            post_center_limit_range=[-80.0, -80.0, -10.0, 80.0, 80.0, 10.0],
                            iou_rectifier=[0.68, 0.71, 0.65], nms_iou_threshold=[0.7, 0.6, 0.55],
                            nms_pre_max_size=4096, nms_post_max_size=500, nms_swap_size_xy=True)),
)
