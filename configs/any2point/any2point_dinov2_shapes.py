# Any2Point with a frozen DINOv2 ViT-S/14 (../shared/models/dinov2-small), first 4 of its 12 blocks to fit the
# CPU budget, on the synthetic shapes. Trainable: tokenizer, guided + bottleneck adapters, block LayerNorms, head.
_base_ = ["./_base_shapes_cls.py"]

model = dict(
    type="Any2PointClassifier",
    num_classes={{_base_.num_classes}},
    backbone=dict(
        frozen=dict(pretrained="../shared/models/dinov2-small", num_layers=4, train_norms=True),
        num_tokens={{_base_.num_tokens}}, group_size={{_base_.group_size}}, num_views=6, cells_per_axis=4, voxel_cells_per_axis=3,
        adapter_hidden=64, aggregation="attention"))
