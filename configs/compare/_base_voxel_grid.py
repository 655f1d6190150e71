# What the transformers of the comparison share when they run on the spconv baseline's 3D grid
# (0.32 x 0.32 x 0.75 m voxels, 8 z-slices): that grid and a two-layer (32, 64) voxel encoder.
_base_ = ['./_base_compare.py']
voxel_size = [0.32, 0.32, 0.75]
model = dict(
    voxelizer=dict(voxel_size=voxel_size),
    voxel_encoder=dict(feat_channels=(32, 64), voxel_size=voxel_size),
)
