# FlatFormer's Waymo data recipe (mit-han-lab/flatformer, configs/flatformer/flatformer_waymo_D1_2x_3class.py
# on configs/_base_/datasets/waymo-3d-3class.py, mmdet3d style): ObjectSample, RandomFlip3D,
# GlobalRotScaleTrans (no translation), PointsRangeFilter, ObjectRangeFilter, PointShuffle; intensity
# and elongation squashed with tanh (tanh_dim [3, 4]) in the scene and in the GT database alike; one
# frame per GPU, no augmentation switch-off. docs/training_recipes.md maps every value to its key.
_base_ = ['./waymo.py']
# The dataset file's point_cloud_range (a z margin of 1 mm; the model's own range is [-2, 4]).
flatformer_data_range = [-74.88, -74.88, -1.999, 74.88, 74.88, 3.999]

# The dataset squashes the intensity (tanh_intensity) and the GT database holds it squashed; squashing
# the elongation after the sampler gives scene and pasted objects tanh on both columns.
train_pipeline = [
    dict(type='ObjectSample', db_path='data/waymo/gt_database_train.npz',
         sample_groups=dict(Vehicle=15, Pedestrian=10, Cyclist=10),  # db_sampler.sample_groups (rate 1.0)
         min_points=dict(Vehicle=5, Pedestrian=10, Cyclist=10),  # prepare.filter_by_min_points
         collision='greedy'),  # mmdet3d's DataBaseSampler: a draw is kept if it clears all kept before it
    dict(type='PointsTanh', dims=(4,)),
    # flip_ratio_bev_horizontal (y -> -y) and flip_ratio_bev_vertical (x -> -x)
    dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=(-0.78539816, 0.78539816), scale_range=(0.95, 1.05),
         translation_std=(0.0, 0.0, 0.0)),
    # PointsRangeFilter (x, y, z) and ObjectRangeFilter (BEV centre), both with open bounds
    dict(type='RangeFilter', point_cloud_range=flatformer_data_range, points_z=True, boxes='xy', interval='open'),
    dict(type='PointShuffle'),
]
# The test pipeline's GlobalRotScaleTrans and RandomFlip3D are identities; it has no box filter and no
# shuffle.
test_pipeline = [
    dict(type='PointsTanh', dims=(4,)),
    dict(type='RangeFilter', point_cloud_range=flatformer_data_range, points_z=True, boxes='none', interval='open'),
]
# filter_empty_gt (Custom3DDataset's default): a training scene left without boxes is replaced by a random one.
train_dataloader = dict(batch_size=1, num_workers=4,  # data.samples_per_gpu / workers_per_gpu
                        dataset=dict(pipeline=train_pipeline, resample_empty_gt=True))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
