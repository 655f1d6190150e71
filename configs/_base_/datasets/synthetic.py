# pc3d's simulated LiDAR dataset (tools/create_data.py synthetic). The range filters take the datasets'
# point_cloud_range: a config that changes the range sets it on the three datasets, not in the pipelines.
dataset_type = 'SyntheticDataset'
data_root = 'data/synthetic'
class_names = ('Vehicle', 'Pedestrian', 'Cyclist')
point_cloud_range = [-40.96, -40.96, -2.0, 40.96, 40.96, 4.0]

train_pipeline = [
    dict(type='RangeFilter'),
    dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=(-0.785, 0.785), scale_range=(0.95, 1.05)),
    # Again after rotation/scaling: points and boxes may have left the range.
    dict(type='RangeFilter'),
    dict(type='PointShuffle'),
]
# Evaluation is within the detection range: GT boxes whose centre lies outside it are dropped.
test_pipeline = [dict(type='RangeFilter')]

train_dataloader = dict(
    batch_size=2, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline,
                 point_cloud_range=point_cloud_range))
val_dataloader = dict(
    batch_size=2, num_workers=1, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline, test_mode=True,
                 point_cloud_range=point_cloud_range))
test_dataloader = val_dataloader

val_evaluator = dict(type='WaymoMetric')
test_evaluator = val_evaluator
