# CenterPoint with the ScatterFormer 3D backbone on pc3d's synthetic data: flatformer_synthetic.py's detector,
# data and schedule with 3D voxels (0.32 x 0.32 x 0.375 m: 320 x 320 x 16) for the official ScatterFormer
# network at C = 64 (spconv stem, 2 stages x 3 layers of scattered linear attention in 12 x 12 windows,
# attention pooling of 4 z-slices into a 160 x 160 BEV at stride 2); the 2D backbone starts at stride 1 on it.
_base_ = ['../flatformer/flatformer_synthetic.py']
voxel_size = [0.32, 0.32, 0.375]
point_cloud_range = [-51.2, -51.2, -2.0, 51.2, 51.2, 4.0]
model = dict(
    voxelizer=dict(voxel_size=voxel_size),
    voxel_encoder=dict(voxel_size=voxel_size),
    backbone3d=dict(_delete_=True, type='ScatterFormer', in_channels=64, channels=64, num_heads=4,
                    num_layers=(3, 3), window_size=12, grid_depth=16),
    backbone2d=dict(layer_strides=(1, 2, 2)),
    head=dict(voxel_size=voxel_size))
