# ScatterFormer on Waymo (paper scale, He et al. ECCV 2024; the official tools/cfgs/waymo_models/scatterformer.yaml):
# 0.32 x 0.32 x 0.1875 m voxels over +-76.8 m x [-2, 4] m (480 x 480 x 32), dynamic VFE (64, 64), then the
# official 3D backbone (FEATURE_DIM 128, WIN_SIZE 12): spconv stem (3x3x3 conv + 3 residual blocks, z halved),
# 2 stages x 3 layers of scattered linear attention (4 heads, 12 x 12 windows over the whole height) with
# cross-window depthwise convs (3x3x3, 1x13, 13x1, identity) and a stride-2 sparse conv between the stages,
# attention pooling of 8 z-slices into a 240 x 240 BEV (stride 2). Official checkpoints convert with
# tools/convert_checkpoint.py --from scatterformer. The 2D stage is pc3d's SECOND backbone (strides 1, 2, 4 on
# the stride-2 BEV) + FPN back to stride 2 (the official one is CascadeDEDBackbone) and a CenterPoint head.
# Training recipe (data pipeline, GT sampling, optimiser, schedule, hooks): the official config's.
_base_ = ['../_base_/datasets/waymo_scatterformer.py',
          '../_base_/schedules/openpcdet_adam_onecycle_lr6e-3_24e.py']
point_cloud_range = [-76.8, -76.8, -2.0, 76.8, 76.8, 4.0]
voxel_size = [0.32, 0.32, 0.1875]
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(64, 64), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    backbone3d=dict(type='ScatterFormer', in_channels=64, channels=128, num_heads=4, num_layers=(3, 3),
                    window_size=12, grid_depth=32),
    bev=dict(type='BEVScatter', in_channels=128, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=128, out_channels=(128, 128, 256), layer_nums=(1, 2, 2),
                    layer_strides=(1, 2, 2)),
    neck=dict(type='SECONDFPN', in_channels=(128, 128, 256), out_channels=(128, 128, 128),
              upsample_strides=(1, 2, 4)),
    head=dict(type='CenterHead', in_channels=384, num_classes=3, pc_range=point_cloud_range, voxel_size=voxel_size,
              out_size_factor=2, shared_channels=64, head_channels=64, loss_weights=dict(heatmap=1.0, bbox=2.0),
              min_radius=2, test_cfg=dict(score_threshold=0.1, pre_max_size=4096, post_max_size=500,
                                          nms_iou_threshold=[0.75, 0.6, 0.55])),
)
