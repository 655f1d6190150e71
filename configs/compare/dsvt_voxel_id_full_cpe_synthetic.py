# Backbone comparison (equal budget): dsvt_voxel_id_synthetic.py with Point Transformer V3's conditional
# position encoding (a full 3x3x3 submanifold conv, its output linear starting at zero) before each block,
# on each stage's grid (8 slices, then 2 after the pooling). Not in the paper. Measured in README.md.
_base_ = ['./dsvt_voxel_id_synthetic.py']
model = dict(backbone3d=dict(cpe_kernel=(3, 3, 3), cpe_depthwise=False))
