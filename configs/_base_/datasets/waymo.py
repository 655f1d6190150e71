# Waymo Open Dataset (OpenPCDet-processed frames, tools/create_data.py waymo) for the paper-scale
# transformer configs of this folder: the dataset, its loaders and metric, without a training recipe.
# Each paper config takes its recipe from two more bases: configs/_base_/datasets/waymo_<paper>.py
# (pipelines, batch size, GT database, augmentation hooks; it builds on this file) and
# configs/_base_/schedules/<schedule>.py (optimiser, schedule, epochs). docs/training_recipes.md
# lists every value and its official source.
_base_ = ['../default_runtime.py']
dataset_type = 'WaymoDataset'
data_root = 'data/waymo'
class_names = ('Vehicle', 'Pedestrian', 'Cyclist')

# OpenPCDet's Waymo loading (DISABLE_NLZ_FLAG_ON_POINTS: True; get_lidar squashes the intensity with
# tanh; SAMPLED_INTERVAL 1 for train and test in every paper config here).
waymo_loading = dict(source='openpcdet', drop_nlz=True, tanh_intensity=True, sampled_interval=1)
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=[], **waymo_loading))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=[], test_mode=True,
                 **waymo_loading))
test_dataloader = val_dataloader
val_evaluator = dict(type='WaymoMetric')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
