# CenterPoint-Pillar: hard-voxelized pillars -> PointPillars encoder -> BEV scatter -> SECOND 2D
# backbone + FPN neck -> CenterPoint head. Geometry must match the dataset's point_cloud_range.
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='HardVoxelizer', voxel_size=[0.32, 0.32, 6.0], pc_range=[-51.2, -51.2, -2.0, 51.2, 51.2, 4.0],
                   max_points=20, max_voxels=(32000, 40000)),
    voxel_encoder=dict(type='PillarEncoder', in_channels=5, out_channels=64, voxel_size=[0.32, 0.32, 6.0],
                       pc_range=[-51.2, -51.2, -2.0, 51.2, 51.2, 4.0]),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=64, out_channels=(64, 128, 256), layer_nums=(3, 5, 5),
                    layer_strides=(1, 2, 2)),
    neck=dict(type='SECONDFPN', in_channels=(64, 128, 256), out_channels=(128, 128, 128), upsample_strides=(0.5, 1, 2)),
    head=dict(type='CenterHead', in_channels=384, num_classes=3, pc_range=[-51.2, -51.2, -2.0, 51.2, 51.2, 4.0],
              voxel_size=[0.32, 0.32, 6.0], out_size_factor=2, shared_channels=64, head_channels=64,
              loss_weights=dict(heatmap=1.0, bbox=2.0), min_radius=2,
              test_cfg=dict(score_threshold=0.1, pre_max_size=1000, post_max_size=200,
                            nms_iou_threshold=[0.2, 0.2, 0.2])),
)
