# Backbone comparison (equal budget): scatterformer_voxel_id_synthetic.py without the attention pooling of
# each pillar's voxels to one BEV cell: its 8 slices x 64 channels go into the BEV as FlatFormer's do
# (a 512-channel map), so the height layout the pooling would fold into 64 channels reaches the 2D backbone.
# Not in the paper. Measured in README.md.
_base_ = ['./scatterformer_voxel_id_synthetic.py']
model = dict(
    backbone3d=dict(pool_to_bev=False),
    bev=dict(num_slices=8),
    backbone2d=dict(in_channels=512),
)
