# Backbone comparison (equal budget): flatformer_voxel_id_stem_cpe2_mlp_synthetic.py (FlatFormer in DSVT-V's
# layout) with Swin V2's scaled cosine attention in place of the dot product. Why: that layout made every seed
# steady (0.529-0.545) but lower than the cosine FlatFormer's good seeds (0.557-0.565); this asks whether the two
# changes add up. Not in the paper. Measured in README.md.
_base_ = ['./flatformer_voxel_id_stem_cpe2_mlp_synthetic.py']
model = dict(backbone3d=dict(cosine_attention=True))
