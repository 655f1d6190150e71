# The default detector (`make demo`): CenterPoint-Pillar on pc3d's synthetic LiDAR data, sized to
# train on a 2-core CPU in minutes.
_base_ = [
    './_base_/models/centerpoint_pillar.py',
    './_base_/datasets/synthetic.py',
    './_base_/schedules/onecycle_adamw.py',
    './_base_/default_runtime.py',
]
