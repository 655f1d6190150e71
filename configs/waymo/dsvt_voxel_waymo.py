# Kept path: the config lives in configs/dsvt/dsvt_voxel_waymo.py.
_base_ = ['../dsvt/dsvt_voxel_waymo.py']
