# Backbone comparison (equal budget): flatformer_voxel_id_full_cpe_cos_synthetic.py (scaled cosine attention) at
# twice the peak learning rate (one-cycle eta_max 6e-3; same warm-up share, same iterations). With dot-product
# attention 6e-3 rescued FlatFormer's bad seed but saturated the attention (logits up to 125) and lowered another
# seed; cosine logits cannot grow past the learned temperature (at most 100). Measured in README.md.
_base_ = ['./flatformer_voxel_id_full_cpe_cos_synthetic.py']
param_scheduler = [
    dict(type='OneCycleLR', eta_max=6e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=6),
]
