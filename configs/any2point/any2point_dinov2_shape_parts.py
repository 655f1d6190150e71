# Any2Point as a 3D backbone: frozen DINOv2 (first 4 blocks) token features propagated to the points for part
# segmentation of the synthetic shapes (15 part classes, see pc3d.datasets.shapes.PART_NAMES).
_base_ = ["./_base_shapes_cls.py"]

custom_imports = dict(
    imports=["pc3d.models.any2point", "pc3d.datasets.shapes", "pc3d.evaluation.classification"],
    allow_failed_imports=False)
num_parts = 15
max_epochs = 4

model = dict(
    type="Any2PointSegmentor",
    num_classes=num_parts,
    backbone=dict(
        frozen=dict(pretrained="../shared/models/dinov2-small", num_layers=4, train_norms=True),
        num_tokens={{_base_.num_tokens}}, group_size={{_base_.group_size}}))

train_dataloader = dict(dataset=dict(_delete_=True, type="SyntheticShapeParts", num_samples=400,
                                     num_points={{_base_.num_points}}, split="train", seed=0))
val_dataloader = dict(dataset=dict(_delete_=True, type="SyntheticShapeParts", num_samples=200,
                                   num_points={{_base_.num_points}}, split="val", seed=0))
val_evaluator = dict(_delete_=True, type="PointSegmentationMetric")
test_dataloader = val_dataloader
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=25),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5)]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
