# CenterPoint-Voxel (SECOND-style): dynamic voxels -> dynamic VFE -> spconv sparse 3D backbone ->
# height compression (BEV scatter of the remaining z-slices) -> SECOND 2D backbone + FPN -> CenterPoint head.
# Grid: 0.1 x 0.1 x 0.15 m over 6 m of height = 40 slices; the backbone strides 8 in x/y and squeezes z (40 -> 20 -> 10 -> 5 -> 3 slices).
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=[0.1, 0.1, 0.15], pc_range=[-51.2, -51.2, -2.0, 51.2, 51.2, 4.0]),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(16, 16), voxel_size=[0.1, 0.1, 0.15],
                       pc_range=[-51.2, -51.2, -2.0, 51.2, 51.2, 4.0], with_cluster_center=True, reduce='max'),
    backbone3d=dict(type='SparseConvBackbone', in_channels=16, stage_channels=(16, 32, 64, 128),
                    stage_blocks=(1, 2, 2, 2), stage_strides=((2, 2, 2), (2, 2, 2), (2, 2, 2)), out_channels=128),
    bev=dict(type='BEVScatter', in_channels=128, num_slices=3),
    backbone2d=dict(type='SECONDBackbone', in_channels=384, out_channels=(128, 256), layer_nums=(5, 5),
                    layer_strides=(1, 2)),
    neck=dict(type='SECONDFPN', in_channels=(128, 256), out_channels=(256, 256), upsample_strides=(1, 2)),
    head=dict(type='CenterHead', in_channels=512, num_classes=3, pc_range=[-51.2, -51.2, -2.0, 51.2, 51.2, 4.0],
              voxel_size=[0.1, 0.1, 0.15], out_size_factor=8, shared_channels=64, head_channels=64,
              loss_weights=dict(heatmap=1.0, bbox=2.0), min_radius=2,
              test_cfg=dict(score_threshold=0.1, pre_max_size=1000, post_max_size=200,
                            nms_iou_threshold=[0.2, 0.2, 0.2])),
)
