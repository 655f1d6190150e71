# The sparse-conv baseline: CenterPoint-Voxel (SECOND-style spconv 3D backbone) on pc3d's synthetic
# data, over +-51.2 m (the datasets' range, which their range filters take).
_base_ = [
    '../_base_/models/centerpoint_voxel.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/schedules/cosine_adamw.py',
    '../_base_/default_runtime.py',
]
point_cloud_range = [-51.2, -51.2, -2.0, 51.2, 51.2, 4.0]
train_dataloader = dict(dataset=dict(point_cloud_range=point_cloud_range))
val_dataloader = dict(dataset=dict(point_cloud_range=point_cloud_range))
test_dataloader = val_dataloader
