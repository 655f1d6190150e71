# Backbone comparison (equal budget): scatterformer_voxel_id_slices_stem_synthetic.py with Point Transformer V3's
# conditional position encoding (a full 3x3x3 submanifold conv, its output linear starting at zero) before each
# block: what FlatFormer and DSVT-V have on top of the stem. Tried earlier only with the height pooled to one BEV
# cell (scatterformer_voxel_id_full_cpe_synthetic.py). Not in the paper. Measured in README.md.
_base_ = ['./scatterformer_voxel_id_slices_stem_synthetic.py']
model = dict(backbone3d=dict(cpe_kernel=(3, 3, 3), cpe_depthwise=False))
