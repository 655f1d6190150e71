# Kept path: the config lives in configs/dsvt/dsvt_pillar_waymo.py.
_base_ = ['../dsvt/dsvt_pillar_waymo.py']
