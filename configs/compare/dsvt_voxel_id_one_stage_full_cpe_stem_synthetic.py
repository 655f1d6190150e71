# Backbone comparison (equal budget): dsvt_voxel_id_one_stage_full_cpe_synthetic.py with a conv stem in place of
# the linear input projection: full 3x3x3 submanifold conv (64 -> 64), BatchNorm, GELU (PTv3's embedding; the
# spconv baseline's first layer is the same conv with BatchNorm and ReLU). Not in the paper. Measured in README.md.
_base_ = ['./dsvt_voxel_id_one_stage_full_cpe_synthetic.py']
model = dict(backbone3d=dict(stem_kernel=(3, 3, 3)))
