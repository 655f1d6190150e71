# CenterPoint with a DSVT-P (pillar) 3D backbone on pc3d's synthetic data: the detector, data and schedule
# of flatformer_synthetic.py with only the 3D backbone swapped. 2 blocks of rotated-set attention
# (sets of 36; 12 x 12 windows, then 24 x 24 shifted by (6, 6)); C = 64.
_base_ = ['../flatformer/flatformer_synthetic.py']
model = dict(
    backbone3d=dict(_delete_=True, type='DSVT', in_channels=64, channels=64, num_heads=4, ffn_channels=128,
                    num_blocks=2, window_shape=(12, 12), set_size=36, hybrid_factor=(1, 2, 2), shift=(0, 6, 6)))
