# DSVT's Waymo data recipe (Haiyang-W/DSVT, tools/cfgs/dsvt_models/dsvt_plain_1f_onestage.yaml and
# dsvt_3D_1f_onestage.yaml, identical in DATA_CONFIG, OPTIMIZATION.BATCH_SIZE_PER_GPU and HOOK), in
# OpenPCDet's order: the augmentor (gt_sampling, random_world_flip / rotation / scaling / translation),
# then the processor (mask_points_and_boxes_outside_range, shuffle_points). The GT database is
# `tools/create_data.py waymo ... --gt-database`. docs/training_recipes.md maps every value to its key.
_base_ = ['./waymo.py']
dsvt_range = [-74.88, -74.88, -2.0, 74.88, 74.88, 4.0]  # DATA_CONFIG.POINT_CLOUD_RANGE

dsvt_gt_sampling = dict(
    type='ObjectSample', db_path='data/waymo/gt_database_train.npz',
    sample_groups=dict(Vehicle=15, Pedestrian=10, Cyclist=10),  # SAMPLE_GROUPS (LIMIT_WHOLE_SCENE: True)
    min_points=dict(Vehicle=5, Pedestrian=10, Cyclist=10),  # PREPARE.filter_by_min_points
    collision='drop_both')  # OpenPCDet's DataBaseSampler: overlapping draws of a class both go
train_pipeline = [
    dsvt_gt_sampling,
    dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5),  # ALONG_AXIS_LIST: ['x', 'y']
    # WORLD_ROT_ANGLE, WORLD_SCALE_RANGE, NOISE_TRANSLATE_STD (rotation, then scaling, then translation)
    dict(type='GlobalRotScaleTrans', rot_range=(-0.78539816, 0.78539816), scale_range=(0.95, 1.05),
         translation_std=(0.5, 0.5, 0.5)),
    # mask_points_and_boxes_outside_range: points by x/y only, boxes by their centre's x/y/z, bounds included
    dict(type='RangeFilter', point_cloud_range=dsvt_range, points_z=False, boxes='xyz', interval='closed'),
    dict(type='PointShuffle'),  # SHUFFLE_ENABLED train
]
# OpenPCDet filters boxes only in training and shuffles test points too (SHUFFLE_ENABLED test).
test_pipeline = [
    dict(type='RangeFilter', point_cloud_range=dsvt_range, points_z=False, boxes='none', interval='closed'),
    dict(type='PointShuffle'),
]
# A training scene left without boxes is replaced by a random other one (DatasetTemplate.prepare_data).
train_dataloader = dict(batch_size=3, num_workers=4,  # BATCH_SIZE_PER_GPU; OpenPCDet's train.py --workers
                        dataset=dict(pipeline=train_pipeline, resample_empty_gt=True))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# HOOK.DisableAugmentationHook: the last epoch without gt_sampling and the world flip / rotation /
# scaling / translation (GlobalRotScaleTrans holds the last three).
custom_hooks = [
    dict(type='ProgressBarHook'), dict(type='ResumeStateHook'),
    dict(type='DisableAugmentationHook', num_last_epochs=1,
         disable_types=('ObjectSample', 'RandomFlip', 'GlobalRotScaleTrans')),
]
