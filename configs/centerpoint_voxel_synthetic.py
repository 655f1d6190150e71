# The sparse-conv baseline: CenterPoint-Voxel (SECOND-style spconv 3D backbone) on pc3d's synthetic data.
_base_ = [
    './_base_/models/centerpoint_voxel.py',
    './_base_/datasets/synthetic.py',
    './_base_/schedules/cosine_adamw.py',
    './_base_/default_runtime.py',
]
