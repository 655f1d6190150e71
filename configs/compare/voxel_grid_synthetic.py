# Backbone comparison, control: no 3D stage at all on the spconv baseline's 3D grid (0.32 x 0.32 x 0.75 m,
# 8 z-slices): each slice's 32 encoder channels go straight into the BEV (8 x 32 = 256 channels). It
# separates what the 3D grid brings from what the sparse convolutions on it bring.
_base_ = ['./_base_compare.py']
voxel_size = [0.32, 0.32, 0.75]
model = dict(
    voxelizer=dict(voxel_size=voxel_size),
    voxel_encoder=dict(feat_channels=(32,), voxel_size=voxel_size),
    bev=dict(type='BEVScatter', in_channels=32, num_slices=8),
    backbone2d=dict(in_channels=256),
)
