# CenterPoint with a FlatFormer 3D backbone on pc3d's synthetic data, sized to train on a 2-core CPU:
# dynamic 0.32 m pillars over +-51.2 m (320 x 320, the spconv baseline's range) -> dynamic VFE -> FlatFormer
# (1 block = x, x-shift, y, y-shift layers; 13 x 13 windows; groups of 144; C = 64) -> BEV scatter ->
# the default pillar config's 2D backbone (strides 2, 4, 8), FPN neck and CenterPoint head (stride 2).
# Schedule: the default pillar config's (centerpoint_pillar_synthetic.py: one-cycle AdamW, 10 epochs).
# dsvt_pillar_synthetic.py and scatterformer_synthetic.py reuse everything here but the 3D backbone.
_base_ = [
    '../_base_/datasets/synthetic.py',
    '../_base_/schedules/onecycle_adamw.py',
    '../_base_/default_runtime.py',
]
point_cloud_range = [-51.2, -51.2, -2.0, 51.2, 51.2, 4.0]
voxel_size = [0.32, 0.32, 6.0]
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(32, 64), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    backbone3d=dict(type='FlatFormer', in_channels=64, channels=64, num_heads=4, num_blocks=1,
                    window_shape=(13, 13), group_size=144, ffn_channels=128),
    bev=dict(type='BEVScatter', in_channels=64, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=64, out_channels=(32, 64, 128), layer_nums=(2, 2, 2),
                    layer_strides=(2, 2, 2)),
    neck=dict(type='SECONDFPN', in_channels=(32, 64, 128), out_channels=(32, 32, 32), upsample_strides=(1, 2, 4)),
    head=dict(type='CenterHead', in_channels=96, num_classes=3, pc_range=point_cloud_range, voxel_size=voxel_size,
              out_size_factor=2, shared_channels=32, head_channels=32, loss_weights=dict(heatmap=1.0, bbox=2.0),
              min_radius=2, test_cfg=dict(score_threshold=0.1, pre_max_size=1000, post_max_size=200,
                                          nms_iou_threshold=[0.2, 0.2, 0.2])),
)
max_epochs = 10
param_scheduler = [
    dict(type='OneCycleLR', eta_max=3e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# The datasets' range (their range filters take it).
train_dataloader = dict(dataset=dict(point_cloud_range=point_cloud_range))
val_dataloader = dict(dataset=dict(point_cloud_range=point_cloud_range))
test_dataloader = val_dataloader
