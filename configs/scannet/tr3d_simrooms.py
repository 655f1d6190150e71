# TR3D on simulated ScanNet-format rooms, sized to train on a CPU: 4 cm voxels, a narrow two-block-deep
# ResNet encoder, the neck upsampling onto the finer level's own voxels (2.5x faster on CPU than the paper's
# generative upsampling), the paper's head, assignment, losses and NMS; 18 ScanNet classes.
# Data: python tools/create_data.py scannet-sim --out data/scannet_sim_det --train 400 --val 50
#       python tools/create_data.py scannet --root data/scannet_sim_det
# Train: OMP_NUM_THREADS=1 python tools/train.py configs/scannet/tr3d_simrooms.py
# Test:  python tools/test.py configs/scannet/tr3d_simrooms.py work_dirs/tr3d_simrooms/epoch_9.pth
default_scope = "pc3d"
custom_imports = dict(imports=["pc3d.datasets.scannet", "pc3d.models", "pc3d.evaluation"], allow_failed_imports=False)

data_root = "data/scannet_sim_det"
voxel_size = 0.04
max_epochs = 9

model = dict(
    type="TR3D", num_classes=18, voxel_size=voxel_size,
    # levels at 8, 16, 32, 64 cm; the head sees 16 cm and 32 cm (as TR3D on ScanNet)
    backbone=dict(type="SparseResNetEncoder", stem_channels=32, stem_stride=1, stem_pool=False,
                  stage_channels=(32, 64, 64, 64), stage_blocks=(1, 1, 1, 1)),
    neck=dict(type="TR3DNeck", out_channels=64, first_level=1, upsample="inverse"),
    head=dict(type="TR3DHead", top_k=6, nms_pre=1000, score_threshold=0.01, iou_threshold=0.5),
    data_preprocessor=dict(type="PointsDataPreprocessor"))

train_pipeline = [
    dict(type="IndoorPointSample", num_points=20000),
    dict(type="IndoorFlip", flip_x=0.5, flip_y=0.5),
    dict(type="IndoorGlobalRotScale", rot_range=(-0.02, 0.02), scale_range=(0.9, 1.1)),
    dict(type="IndoorNormalizeColor"),
]
test_pipeline = [dict(type="IndoorNormalizeColor")]  # every point of the room

train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=True), collate_fn=dict(type="pc3d_collate_batch"),
    dataset=dict(type="ScanNetDataset", data_root=data_root, split="train", task="det", pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=False), collate_fn=dict(type="pc3d_collate_batch"),
    dataset=dict(type="ScanNetDataset", data_root=data_root, split="val", task="det", pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type="ScanNetDetMetric")
# the per-room detections too, for the bootstrap interval (python -m pc3d.evaluation.scannet_bootstrap <pkl>)
test_evaluator = [dict(type="ScanNetDetMetric"),
                  dict(type="DumpResults", out_file_path="work_dirs/tr3d_simrooms/test_detections.pkl")]

optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=0.002, weight_decay=0.0001),
                     clip_grad=dict(max_norm=10.0))
param_scheduler = [dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0,
                        end=max_epochs, convert_to_iter_based=True)]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

default_hooks = dict(timer=dict(type="IterTimerHook"), logger=dict(type="LoggerHook", interval=10),
                     param_scheduler=dict(type="ParamSchedulerHook"),
                     checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=2),
                     sampler_seed=dict(type="DistSamplerSeedHook"))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
randomness = dict(seed=0)
log_level = "INFO"
load_from = None
resume = False
