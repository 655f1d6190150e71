# DSVT-V on Waymo (paper scale, Wang et al. CVPR 2023; Haiyang-W/DSVT tools/cfgs/dsvt_models/dsvt_3D_1f_onestage.yaml,
# which differs from the DSVT-P yaml only in VOXEL_SIZE and BACKBONE_3D): dsvt_pillar_waymo.py's detector and
# training recipe on 0.32 x 0.32 x 0.1875 m voxels over +-74.88 m x [-2, 4] m (468 x 468 x 32), with the DSVT-V
# backbone: four stages (d = 192, 8 heads, FFN 384, one block each, sets of tau = 48), windows 12 x 12 x {32, 8, 2, 1}
# and 24 x 24 x {32, 8, 2, 1} shifted by (6, 6) (stages 1 and 3: the configuration alternates over all blocks),
# joined by attention pooling of z by 4, 4, 2 (32 -> 8 -> 2 -> 1 slices). Its checkpoints convert with
# tools/convert_checkpoint.py --from openpcdet.
_base_ = ['./dsvt_pillar_waymo.py']
point_cloud_range = [-74.88, -74.88, -2.0, 74.88, 74.88, 4.0]
voxel_size = [0.32, 0.32, 0.1875]
model = dict(
    voxelizer=dict(voxel_size=voxel_size),
    voxel_encoder=dict(voxel_size=voxel_size),
    backbone3d=dict(_delete_=True, type='DSVT', in_channels=192, channels=192, num_heads=8, ffn_channels=384,
                    num_blocks=1, window_shape=[(32, 12, 12), (8, 12, 12), (2, 12, 12), (1, 12, 12)], set_size=48,
                    hybrid_factor=(1, 2, 2), shift=(0, 6, 6), pool_strides=((4, 1, 1), (4, 1, 1), (2, 1, 1))),
    head=dict(voxel_size=voxel_size),
)
