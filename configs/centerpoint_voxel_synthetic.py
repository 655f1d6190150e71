# The sparse-conv baseline: CenterPoint-Voxel (SECOND-style spconv 3D backbone) on pc3d's synthetic
# data, over +-51.2 m (the dataset pipelines are restated for that range).
_base_ = [
    './_base_/models/centerpoint_voxel.py',
    './_base_/datasets/synthetic.py',
    './_base_/schedules/cosine_adamw.py',
    './_base_/default_runtime.py',
]
point_cloud_range = [-51.2, -51.2, -2.0, 51.2, 51.2, 4.0]
train_pipeline = [
    dict(type='RangeFilter', point_cloud_range=point_cloud_range),
    dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=(-0.785, 0.785), scale_range=(0.95, 1.05)),
    dict(type='RangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PointShuffle'),
]
test_pipeline = [dict(type='RangeFilter', point_cloud_range=point_cloud_range)]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
