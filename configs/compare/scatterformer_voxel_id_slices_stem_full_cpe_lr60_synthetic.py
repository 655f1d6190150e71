# Backbone comparison (equal budget): scatterformer_voxel_id_slices_stem_full_cpe_synthetic.py with twice the peak learning rate
# (one-cycle eta_max 6e-3 instead of 3e-3; same warm-up share, same iterations). Half the rate (the _lr15 config)
# left its bad seeds as bad and raised the training loss: this tests the other direction. Measured in README.md.
_base_ = ['./scatterformer_voxel_id_slices_stem_full_cpe_synthetic.py']
param_scheduler = [
    dict(type='OneCycleLR', eta_max=6e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=6),
]
