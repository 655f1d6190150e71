# Backbone comparison (equal budget): ScatterFormer (scattered linear attention in 12 x 12 windows +
# depthwise cross-window convs) on 0.32 m pillars in front of the default pillar detector's 2D backbone and head.
_base_ = ['./flatformer_synthetic.py']
model = dict(
    backbone3d=dict(_delete_=True, type='ScatterFormer', in_channels=64, channels=64, num_heads=4, num_blocks=2,
                    window_shape=(12, 12), kernel=7, ffn_channels=128, grid_depth=1))
