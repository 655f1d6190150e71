# Shared schedule and data for classification on the built-in synthetic shapes (CPU-sized budget).
# Both arms of the Any2Point vs from-scratch comparison inherit this file, so they see the same data,
# epochs, batch size and optimiser; only `model` differs.
default_scope = "pc3d"
custom_imports = dict(
    imports=["pc3d.models.any2point", "pc3d.datasets.shapes", "pc3d.evaluation.classification"],
    allow_failed_imports=False)

num_points = 512
num_tokens = 32  # FPS centres per shape (both arms)
group_size = 32  # kNN points per token
num_classes = 10
batch_size = 16
max_epochs = 6

train_dataloader = dict(
    batch_size=batch_size, num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="SyntheticShapes", num_samples=400, num_points=num_points, split="train", seed=0,
                 augment=True))
val_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="SyntheticShapes", num_samples=200, num_points=num_points, split="val", seed=0))
val_evaluator = dict(type="ClassificationAccuracy")
test_dataloader = val_dataloader
test_evaluator = val_evaluator

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()

optim_wrapper = dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05), clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=25),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5)]

default_hooks = dict(
    logger=dict(type="LoggerHook", interval=5),
    checkpoint=dict(type="CheckpointHook", interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend="gloo"))
