# Backbone comparison (equal budget): scatterformer_voxel_id_slices_stem_synthetic.py with the paper's layers
# (output LayerNorm, branches at their default init) instead of identity_init: the one transformer whose
# Vehicle AP fell with identity_init (0.482 -> 0.450, README.md). Not in the paper (the conv stem and the
# 8 slices into the BEV). Measured in README.md.
_base_ = ['./scatterformer_voxel_id_slices_stem_synthetic.py']
model = dict(backbone3d=dict(identity_init=False))
