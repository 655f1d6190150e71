# From-scratch baseline for any2point_dinov2_shape_parts.py: same tokenizer (width 384), propagation and head,
# no frozen transformer, same data and schedule.
_base_ = ["./any2point_dinov2_shape_parts.py"]

model = dict(backbone=dict(_delete_=True, frozen=None, embed_dim=384, num_tokens={{_base_.num_tokens}},
                           group_size={{_base_.group_size}}))
