# Backbone comparison (equal budget): dsvt_voxel_id_full_cpe_synthetic.py with one stage on 8 x 12 x 12
# windows instead of two joined by z pooling: two blocks (four set-attention layers, as FlatFormer's one
# block), a full 3x3x3 conv position encoding before each, and the 8 slices x 64 channels into the BEV
# as FlatFormer's. Not in the paper (DSVT-V pools z between stages). Measured in README.md.
_base_ = ['./dsvt_voxel_id_full_cpe_synthetic.py']
model = dict(
    backbone3d=dict(window_shape=[(8, 12, 12)], pool_strides=(), num_blocks=2),
    bev=dict(num_slices=8),
    backbone2d=dict(in_channels=512),
)
