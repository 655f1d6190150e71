# FlatFormer on Waymo (paper scale, Liu et al. CVPR 2023; DESIGN.md): 0.32 x 0.32 x 6 m pillars over
# +-76.8 m (480 x 480; SST's +-74.88 m gives 468 cells, which a stride-8 2D backbone can't halve three
# times and upsample back to the same size), dynamic VFE (64, 128), FlatFormer C = 128, 8 heads, 2 blocks x 4 layers
# (x, x-shift, y, y-shift), 13 x 13 windows, groups of G = 144, FFN 256; then a SECOND 2D backbone
# (strides 2, 4, 8) + FPN back to stride 2 and a CenterPoint head on a 240 x 240 grid of 0.64 m cells.
# Training recipe (data pipeline, GT sampling, optimiser, schedule): the official config's.
_base_ = ['../_base_/datasets/waymo_flatformer.py', '../_base_/schedules/mmdet3d_cyclic_cosine_24e.py']
point_cloud_range = [-76.8, -76.8, -2.0, 76.8, 76.8, 4.0]
voxel_size = [0.32, 0.32, 6.0]
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(64, 128), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    backbone3d=dict(type='FlatFormer', in_channels=128, channels=128, num_heads=8, num_blocks=2,
                    window_shape=(13, 13), group_size=144, ffn_channels=256),
    bev=dict(type='BEVScatter', in_channels=128, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=128, out_channels=(64, 128, 256), layer_nums=(1, 2, 2),
                    layer_strides=(2, 2, 2)),
    neck=dict(type='SECONDFPN', in_channels=(64, 128, 256), out_channels=(64, 64, 64), upsample_strides=(1, 2, 4)),
    head=dict(type='CenterHead', in_channels=192, num_classes=3, pc_range=point_cloud_range, voxel_size=voxel_size,
              out_size_factor=2, shared_channels=64, head_channels=64, loss_weights=dict(heatmap=1.0, bbox=2.0),
              min_radius=2, test_cfg=dict(score_threshold=0.1, pre_max_size=4096, post_max_size=500,
                                          nms_iou_threshold=[0.7, 0.6, 0.55])),
)
