# Backbone comparison (equal budget): DSVT-P (rotated-set attention, 12 x 12 windows, sets of 36, shifted
# every other block) on 0.32 m pillars in front of the default pillar detector's 2D backbone and head.
_base_ = ['./flatformer_synthetic.py']
model = dict(
    backbone3d=dict(_delete_=True, type='DSVT', in_channels=64, channels=64, num_heads=4, ffn_channels=128,
                    num_blocks=2, window_shape=(12, 12), set_size=36, hybrid_factor=(1, 2, 2), shift=(0, 6, 6)))
