# nuScenes (native tables + 10 sweeps, `tools/create_data.py nuscenes`) for the paper-scale transformer configs
# of this folder: the 10 detection classes, +-54 m x [-5, 3] m, and the papers' 20-epoch one-cycle AdamW
# schedule. GT velocity stays NaN where an annotation has no neighbour: the velocity loss skips it and the
# metric ignores it. The range filters take the datasets' point_cloud_range.
_base_ = ['./default_runtime.py', './schedules/onecycle_adamw.py']
dataset_type = 'NuScenesDataset'
data_root = 'data/nuscenes'
class_names = ('car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle',
               'pedestrian', 'traffic_cone')
point_cloud_range = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]

train_pipeline = [
    dict(type='RangeFilter'),
    dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5),
    # Velocity turns and scales with the scene (transforms.py).
    dict(type='GlobalRotScaleTrans', rot_range=(-0.785, 0.785), scale_range=(0.9, 1.1)),
    dict(type='RangeFilter'),
    dict(type='PointShuffle'),
]
test_pipeline = [dict(type='RangeFilter')]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', sweeps=10, classes=class_names,
                 pipeline=train_pipeline, point_cloud_range=point_cloud_range))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', sweeps=10, classes=class_names,
                 pipeline=test_pipeline, test_mode=True, point_cloud_range=point_cloud_range))
test_dataloader = val_dataloader
val_evaluator = dict(type='NuScenesMetric', class_names=class_names)
test_evaluator = val_evaluator

# The papers' schedule: the one-cycle AdamW base at a 5e-3 peak, weight decay 0.05, gradient clip 35.
lr_max = 5e-3
optim_wrapper = dict(optimizer=dict(lr=lr_max / 10, betas=(0.9, 0.99), weight_decay=0.05), clip_grad=dict(max_norm=35))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr_max, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=20),
]

# The papers' 2D stage: a 128-channel BEV map, a 2D backbone (strides 1, 2, 4; 128, 128, 256) and an FPN to
# stride 2. The head regresses velocity (vx, vy) besides the box, its columns weighted 0.2 as in the papers'
# nuScenes heads, on that stride-2 grid (180 x 180 cells of 0.6 m with 0.3 m voxels). The papers use a
# TransFusion head; pc3d's is CenterPoint's (see README.md). Top-level configs add the voxelizer, encoder
# and 3D stage (and the voxel size).
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    bev=dict(type='BEVScatter', in_channels=128, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=128, out_channels=(128, 128, 256), layer_nums=(1, 2, 2),
                    layer_strides=(1, 2, 2)),
    neck=dict(type='SECONDFPN', in_channels=(128, 128, 256), out_channels=(128, 128, 128),
              upsample_strides=(0.5, 1, 2)),
    head=dict(type='CenterHead', in_channels=384, num_classes=10, pc_range=point_cloud_range, out_size_factor=2,
              shared_channels=64,
              head_channels=64, with_velocity=True, code_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2),
              loss_weights=dict(heatmap=1.0, bbox=0.25), min_radius=2,
              test_cfg=dict(score_threshold=0.1, pre_max_size=1000, post_max_size=500, nms_iou_threshold=0.2)),
)
