# ScanNet v2 in pc3d's layout (tools/create_data.py scannet; simulated rooms: scannet-sim), loaders, the run
# settings the indoor configs share. A config sets data_root, the task ('det' / 'seg'), its pipelines, batch and
# workers, and its metric.
default_scope = "pc3d"
custom_imports = dict(imports=["pc3d.datasets.scannet", "pc3d.models", "pc3d.evaluation"], allow_failed_imports=False)
data_root = "data/scannet"
test_pipeline = [dict(type="IndoorNormalizeColor")]  # every point of the scene is evaluated

train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=True), collate_fn=dict(type="pc3d_collate_batch"),
    dataset=dict(type="ScanNetDataset", data_root=data_root, split="train", task="det"))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=False), collate_fn=dict(type="pc3d_collate_batch"),
    dataset=dict(type="ScanNetDataset", data_root=data_root, split="val", task="det", pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
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
