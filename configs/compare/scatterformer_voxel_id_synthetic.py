# Backbone comparison (equal budget): ScatterFormer on the spconv baseline's 3D grid, as in
# scatterformer_voxel_synthetic.py but with identity_init (pre-norm residual layers whose branches start at zero,
# no output LayerNorm): the untrained backbone hands the encoder's features through and the attention
# learns what to add. Not the paper's layer; the two are measured side by side in README.md.
_base_ = ['./scatterformer_voxel_synthetic.py']
model = dict(backbone3d=dict(identity_init=True))
