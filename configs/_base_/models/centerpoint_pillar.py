# CenterPoint-Pillar, sized for CPU training: dynamic 0.32 m pillars over +-40.96 m (256 x 256) encoded
# from all their points (DynamicVFE, one Linear-BN-ReLU + scatter-max, no per-pillar point cap) ->
# BEV scatter -> SECOND 2D backbone (strides 2, 4, 8) + FPN neck back to stride 2 -> CenterPoint head
# on a 128 x 128 grid of 0.64 m cells. Geometry matches datasets/synthetic.py.
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=[0.32, 0.32, 6.0], pc_range=[-40.96, -40.96, -2.0, 40.96, 40.96, 4.0]),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(32,), voxel_size=[0.32, 0.32, 6.0],
                       pc_range=[-40.96, -40.96, -2.0, 40.96, 40.96, 4.0], with_cluster_center=True, reduce='max'),
    bev=dict(type='BEVScatter', in_channels=32, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=32, out_channels=(32, 64, 128), layer_nums=(2, 2, 2),
                    layer_strides=(2, 2, 2)),
    neck=dict(type='SECONDFPN', in_channels=(32, 64, 128), out_channels=(32, 32, 32), upsample_strides=(1, 2, 4)),
    head=dict(type='CenterHead', in_channels=96, num_classes=3, pc_range=[-40.96, -40.96, -2.0, 40.96, 40.96, 4.0],
              voxel_size=[0.32, 0.32, 6.0], out_size_factor=2, shared_channels=32, head_channels=32,
              loss_weights=dict(heatmap=1.0, bbox=2.0), min_radius=2,
              test_cfg=dict(score_threshold=0.1, pre_max_size=1000, post_max_size=200,
                            nms_iou_threshold=[0.2, 0.2, 0.2])),
)
