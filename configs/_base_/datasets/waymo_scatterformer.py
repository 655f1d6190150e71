# ScatterFormer's Waymo data recipe (skyhehe123/ScatterFormer, tools/cfgs/waymo_models/scatterformer.yaml):
# DSVT's OpenPCDet augmentor and processor on +-76.8 m, with POINTS_TANH_DIM [3, 4] (the elongation is
# squashed too) and a DisableAugmentationHook that drops only gt_sampling, for the last 4 epochs.
# docs/training_recipes.md maps every value to its key.
_base_ = ['./waymo.py']
scatterformer_range = [-76.8, -76.8, -2.0, 76.8, 76.8, 4.0]  # DATA_CONFIG.POINT_CLOUD_RANGE

# POINTS_TANH_DIM applies to the loaded scene only: the GT database (built with the dataset config
# waymo_dataset.yaml, which has no POINTS_TANH_DIM) holds squashed intensity and raw elongation, and
# the sampler has no APPLY_TANH_DIM_LIST here, so pasted objects keep their raw elongation.
scene_tanh = dict(type='PointsTanh', dims=(4,))  # the dataset squashes the intensity (tanh_intensity)
train_pipeline = [
    scene_tanh,
    dict(type='ObjectSample', db_path='data/waymo/gt_database_train.npz',
         sample_groups=dict(Vehicle=15, Pedestrian=10, Cyclist=10),
         min_points=dict(Vehicle=5, Pedestrian=10, Cyclist=10), collision='drop_both'),
    dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=(-0.78539816, 0.78539816), scale_range=(0.95, 1.05),
         translation_std=(0.5, 0.5, 0.5)),
    dict(type='RangeFilter', point_cloud_range=scatterformer_range, points_z=False, boxes='xyz', interval='closed'),
    dict(type='PointShuffle'),
]
test_pipeline = [
    scene_tanh,
    dict(type='RangeFilter', point_cloud_range=scatterformer_range, points_z=False, boxes='none', interval='closed'),
    dict(type='PointShuffle'),
]
train_dataloader = dict(batch_size=4, num_workers=4,  # BATCH_SIZE_PER_GPU
                        dataset=dict(pipeline=train_pipeline, resample_empty_gt=True))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# HOOK.DisableAugmentationHook: DISABLE_AUG_LIST ['gt_sampling'], NUM_LAST_EPOCHS 4.
custom_hooks = [
    dict(type='ProgressBarHook'), dict(type='ResumeStateHook'),
    dict(type='DisableAugmentationHook', num_last_epochs=4, disable_types=('ObjectSample',)),
]
