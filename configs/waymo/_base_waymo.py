# Waymo Open Dataset (OpenPCDet-processed frames, tools/create_data.py waymo) for the paper-scale
# transformer configs of this folder, with their 24-epoch one-cycle AdamW schedule. Top-level configs
# with another range restate the pipelines.
_base_ = ['../_base_/default_runtime.py']
dataset_type = 'WaymoDataset'
data_root = 'data/waymo'
class_names = ('Vehicle', 'Pedestrian', 'Cyclist')
point_cloud_range = [-74.88, -74.88, -2.0, 74.88, 74.88, 4.0]

train_pipeline = [
    dict(type='RangeFilter', point_cloud_range=point_cloud_range),
    dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=(-0.785, 0.785), scale_range=(0.95, 1.05)),
    dict(type='RangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PointShuffle'),
]
test_pipeline = [dict(type='RangeFilter', point_cloud_range=point_cloud_range)]
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', source='openpcdet', tanh_intensity=True,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', source='openpcdet', tanh_intensity=True,
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='WaymoMetric')
test_evaluator = val_evaluator

lr_max = 3e-3
max_epochs = 24
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr_max / 10, betas=(0.9, 0.99), weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr_max, pct_start=0.1, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
