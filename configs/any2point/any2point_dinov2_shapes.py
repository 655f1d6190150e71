# Any2Point with a frozen DINOv2 ViT-S/14 (../shared/models/dinov2-small), first 4 of its 12 blocks to fit the
# CPU budget, on the synthetic shapes. Projection and adapters at their published settings (the backbone's
# defaults: 6 cube views at distance 1.8, 26 px virtual cells, 0.16 voxels, guided scale 0.7, bottleneck 8 x 0.3).
# Trainable: tokenizer, adapters, cell attentions, cls_pos, block LayerNorms, head.
_base_ = ["./_base_shapes_cls.py"]

model = dict(
    type="Any2PointClassifier",
    num_classes={{_base_.num_classes}},
    backbone=dict(
        frozen=dict(pretrained="../shared/models/dinov2-small", num_layers=4, train_norms=True),
        num_tokens={{_base_.num_tokens}}, group_size={{_base_.group_size}}))
