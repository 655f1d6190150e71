# CenterPoint with a ScatterFormer 3D backbone on pc3d's synthetic data: the detector, data and schedule of
# flatformer_synthetic.py with only the 3D backbone swapped. 2 blocks of scattered linear attention in
# 12 x 12 windows (the second shifted) + cross-window depthwise convs (3x3, 1x7, 7x1, identity); C = 64;
# pillars, so there is no height to pool.
_base_ = ['./flatformer_synthetic.py']
model = dict(
    backbone3d=dict(_delete_=True, type='ScatterFormer', in_channels=64, channels=64, num_heads=4, num_blocks=2,
                    window_shape=(12, 12), kernel=7, ffn_channels=128, grid_depth=1))
