# Indoor semantic segmentation on simulated ScanNet rooms: spconv sparse UNet, 0.05 m voxels, ScanNet mIoU.
# Data: python tools/create_data.py scannet_sim --out data/scannet_sim --train 40 --val 10
#       python tools/create_data.py scannet --root data/scannet_sim
# On a contended CPU, torch.set_num_threads(1) is much faster than the default (thread sync dominates).
_base_ = ["../_base_/datasets/scannet.py"]
custom_imports = dict(imports=["pc3d.datasets.scannet", "pc3d.models", "pc3d.models.segmentors",
                               "pc3d.evaluation"], allow_failed_imports=False)

data_root = "data/scannet_sim"
voxel_size = 0.05
max_epochs = 12

model = dict(type="SparseUNetSegmentor", num_classes=20, voxel_size=voxel_size, channels=(16, 32, 64, 96),
             blocks=(1, 1, 2, 2), ignore_index=-1, data_preprocessor=dict(type="PointsDataPreprocessor"))

train_pipeline = [
    dict(type="IndoorPointSample", num_points=40000),
    dict(type="IndoorGlobalRotScale", rot_range=(-3.14159, 3.14159), scale_range=(0.9, 1.1)),
    dict(type="IndoorFlip", flip_x=0.5, flip_y=0.5),
    dict(type="IndoorColorJitter", std=10.0, point_std=3.0),
    dict(type="IndoorNormalizeColor"),
]
train_dataloader = dict(dataset=dict(data_root=data_root, task="seg", pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, task="seg"))
test_dataloader = val_dataloader
val_evaluator = dict(type="ScanNetSegMetric")
test_evaluator = val_evaluator

optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=0.008, weight_decay=0.01),
                     clip_grad=dict(max_norm=10.0))
param_scheduler = [dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min=1e-4, by_epoch=True, begin=0,
                        end=max_epochs, convert_to_iter_based=True)]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=max_epochs)

default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=-1))
