# Kept path: the config lives in configs/flatformer/flatformer_waymo.py.
_base_ = ['../flatformer/flatformer_waymo.py']
