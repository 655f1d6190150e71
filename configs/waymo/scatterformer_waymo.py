# Kept path: the config lives in configs/scatterformer/scatterformer_waymo.py.
_base_ = ['../scatterformer/scatterformer_waymo.py']
