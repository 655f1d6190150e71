# Backbone comparison (equal budget): FlatFormer laid out as DSVT-V one stage + stem + full CPE, the comparison's
# steadiest transformer, with FlatFormer's flattened groups of 144 in place of DSVT's sets: a conv stem, a full
# 3x3x3 conv position encoding before every two layers (DSVT's blocks of two set-attention layers, each behind
# its own encoding; FlatFormer has one per four) and DSVT's learned encoding of the in-window (x, y, z) instead
# of the sinusoid of (x, y). Dot-product attention, as DSVT-V. What it asks: with everything else DSVT-V's, are
# FlatFormer's bad seeds its partition? Not in the paper. Measured in README.md.
_base_ = ['./flatformer_voxel_id_stem_full_cpe_synthetic.py']
model = dict(backbone3d=dict(cpe_interval=2, position_encoding='mlp', position_axes=('x', 'y', 'z')))
