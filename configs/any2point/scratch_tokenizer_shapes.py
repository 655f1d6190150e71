# From-scratch baseline for any2point_dinov2_shapes.py: the same point tokenizer (width 384) and head, no
# frozen transformer, same data, epochs, batch size and optimiser.
_base_ = ["./_base_shapes_cls.py"]

model = dict(
    type="Any2PointClassifier",
    num_classes={{_base_.num_classes}},
    backbone=dict(frozen=None, embed_dim=384, num_tokens={{_base_.num_tokens}}, group_size={{_base_.group_size}}))
