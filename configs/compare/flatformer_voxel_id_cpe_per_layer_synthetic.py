# Backbone comparison (equal budget): flatformer_voxel_id_cpe_synthetic.py (depthwise 3x3x3 conv position
# encoding) with one encoding before every attention layer instead of one per block, as Point Transformer V3
# places them. Not in the paper. Measured in README.md.
_base_ = ['./flatformer_voxel_id_synthetic.py']
model = dict(backbone3d=dict(cpe_kernel=(3, 3, 3), cpe_every_layer=True))
