# TR3D on simulated ScanNet-format rooms, sized to train on a CPU: 4 cm voxels, a narrow two-block-deep
# ResNet encoder, the neck upsampling onto the finer level's own voxels (2.5x faster on CPU than the paper's
# generative upsampling), the paper's head, assignment, losses and NMS; 18 ScanNet classes.
# Data: python tools/create_data.py scannet-sim --out data/scannet_sim_det --train 400 --val 50
#       python tools/create_data.py scannet --root data/scannet_sim_det
# Train: OMP_NUM_THREADS=1 python tools/train.py configs/scannet/tr3d_simrooms.py
# Test:  python tools/test.py configs/scannet/tr3d_simrooms.py work_dirs/tr3d_simrooms/epoch_9.pth
_base_ = ["../_base_/datasets/scannet.py"]
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
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
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
