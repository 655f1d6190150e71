# CenterPoint-Pillar with the velocity head on pc3d's simulated nuScenes scenes, written by
#   python tools/create_data.py nuscenes-sim --out data/nuscenes_sim --version v1.0-trainval \
#       --train-scenes 24 --val-scenes 6
#   python tools/create_data.py nuscenes --root data/nuscenes_sim --version v1.0-trainval --sweeps 10
# sized for a CPU: 10-sweep clouds (time lag as the 5th point feature, which is what makes velocity
# observable), dynamic 0.4 m pillars over +-51.2 m (256 x 256), a narrow SECOND backbone + FPN to stride 2,
# evaluated with the nuScenes metric (mAP, TP errors, NDS). It trains the five classes the simulator
# places; the official metric still averages over all ten, so the other five count as AP 0 / error 1.
_base_ = ['../_base_/nuscenes_centerpoint.py']
data_root = 'data/nuscenes_sim'
class_names = ('car', 'truck', 'bus', 'bicycle', 'pedestrian')
point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
voxel_size = [0.4, 0.4, 8.0]
train_dataloader = dict(
    batch_size=2, num_workers=1,
    dataset=dict(data_root=data_root, split='train', classes=class_names, point_cloud_range=point_cloud_range))
val_dataloader = dict(
    batch_size=2, num_workers=1,
    dataset=dict(data_root=data_root, split='val', classes=class_names, point_cloud_range=point_cloud_range))
test_dataloader = val_dataloader
val_evaluator = dict(type='NuScenesMetric', class_names=class_names)
test_evaluator = val_evaluator
model = dict(
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(32,), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    bev=dict(type='BEVScatter', in_channels=32, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=32, out_channels=(32, 64, 128), layer_nums=(2, 2, 2),
                    layer_strides=(2, 2, 2)),
    neck=dict(type='SECONDFPN', in_channels=(32, 64, 128), out_channels=(32, 32, 32), upsample_strides=(1, 2, 4)),
    # As the default synthetic detector: 3 x 3 cells regress each box, the axis from (sin 2h, cos 2h).
    head=dict(in_channels=96, num_classes=len(class_names), pc_range=point_cloud_range, voxel_size=voxel_size,
              shared_channels=32, head_channels=32, loss_weights=dict(heatmap=1.0, bbox=2.0), reg_radius=1,
              double_angle=True, code_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)),
)
lr_max = 3e-3
max_epochs = 20
optim_wrapper = dict(optimizer=dict(lr=lr_max / 10, betas=(0.95, 0.99), weight_decay=0.01), clip_grad=dict(max_norm=10))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr_max, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
