# Backbone comparison (equal budget): dsvt_voxel_id_one_stage_full_cpe_stem_synthetic.py with sets of 144 voxels
# instead of 36, so each voxel attends to as many others as in FlatFormer's groups of 144 (the 8 x 12 x 12
# windows hold up to 1152 cells). Not in the paper (DSVT uses sets of 36). Measured in README.md.
_base_ = ['./dsvt_voxel_id_one_stage_full_cpe_stem_synthetic.py']
model = dict(backbone3d=dict(set_size=144))
