# The default detector (`make demo`): CenterPoint-Pillar on pc3d's synthetic LiDAR data, sized to
# train on a 2-core CPU in about ten minutes (160 frames x 10 epochs of 2-frame batches).
_base_ = [
    './_base_/models/centerpoint_pillar.py',
    './_base_/datasets/synthetic.py',
    './_base_/schedules/onecycle_adamw.py',
    './_base_/default_runtime.py',
]
max_epochs = 10
param_scheduler = [
    dict(type='OneCycleLR', eta_max=3e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# tools/demo.py: frames it simulates when data/synthetic is missing.
demo = dict(train_frames=160, val_frames=40)
