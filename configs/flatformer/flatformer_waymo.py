# FlatFormer on Waymo (paper scale, Liu et al. CVPR 2023): the official model of mit-han-lab/flatformer
# configs/flatformer/flatformer_waymo_D1_2x_3class.py as far as pc3d's modules express it. 0.32 x 0.32 x 6 m
# pillars over +-74.88 m (468 x 468), dynamic VFE (64, 128) with cluster and voxel-centre offsets, the FlatFormer
# middle encoder (C = 128, 8 heads, 2 blocks x 4 layers on x, x-shift, y, y-shift orders, 13 x 13 windows, groups
# of G = 144 with the official last-group rule, FFN 256; equal to the official module, its weights convert with
# tools/convert_checkpoint.py --from flatformer), a residual SECOND 2D backbone (3 + 3 convs, strides 1, 2; 64, 128)
# and FPN (128 + 128 at stride 1), a stride-1 CenterPoint head (shared conv 64) with per-class NMS thresholds.
# Not expressed (the official detector has them): the head's IoU branch with IoU-rectified scores (iou_pow 2), its
# untrained velocity branch (code weight 0) and per-class NMS caps (docs/flatformer.md).
# Training recipe (data pipeline, GT sampling, optimiser, schedule): the official config's.
_base_ = ['../_base_/datasets/waymo_flatformer.py', '../_base_/schedules/mmdet3d_cyclic_cosine_24e.py']
point_cloud_range = [-74.88, -74.88, -2.0, 74.88, 74.88, 4.0]
voxel_size = [0.32, 0.32, 6.0]
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='DynamicVoxelizer', voxel_size=voxel_size, pc_range=point_cloud_range),
    voxel_encoder=dict(type='DynamicVFE', in_channels=5, feat_channels=(64, 128), voxel_size=voxel_size,
                       pc_range=point_cloud_range, with_cluster_center=True, reduce='max'),
    # The official middle encoder's defaults: in_channels 128, 8 heads, 2 blocks, window 13 x 13, G = 144.
    backbone3d=dict(type='FlatFormer', in_channels=128, num_heads=8, num_blocks=2, window_shape=(13, 13),
                    group_size=144),
    bev=dict(type='BEVScatter', in_channels=128, num_slices=1),
    backbone2d=dict(type='SECONDBackbone', in_channels=128, out_channels=(64, 128), layer_nums=(3, 3),
                    layer_strides=(1, 2), residual=True),
    neck=dict(type='SECONDFPN', in_channels=(64, 128), out_channels=(128, 128), upsample_strides=(1, 2)),
    # train_cfg: min_radius 1, gaussian_overlap 0.1, max_objs 500. test_cfg: the official coder keeps the top 4096
    # over all classes at score > 0.1, then rotated NMS per class (IoU 0.8, 0.55, 0.55), at most 500 boxes in all
    # (max_per_img); its per-class caps before and after NMS (2048/1024/1024, 300/100/100) are not expressed.
    head=dict(type='CenterHead', in_channels=256, num_classes=3, pc_range=point_cloud_range, voxel_size=voxel_size,
              out_size_factor=1, shared_channels=64, head_channels=64, loss_weights=dict(heatmap=1.0, bbox=2.0),
              max_objs=500, min_overlap=0.1, min_radius=1,
              test_cfg=dict(score_threshold=0.1, pre_max_size=4096, post_max_size=500,
                            nms_iou_threshold=[0.8, 0.55, 0.55])),
)
