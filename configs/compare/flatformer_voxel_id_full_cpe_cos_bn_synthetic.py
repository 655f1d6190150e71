# Backbone comparison (equal budget): flatformer_voxel_id_full_cpe_cos_synthetic.py with BatchNorm between the
# conv position encoding's full conv and its zero-initialised linear, x += Linear(BN(Conv(LN(x)))). Why: the
# conv's branch dominates the backbone's output (3.4-4.5 x the RMS of what it adds to after 12 epochs), and the
# larger it ends the worse the run; with BatchNorm the conv's output no longer grows with its weights, as each
# conv of the spconv baseline. Not in the paper or PTv3. Measured in README.md.
_base_ = ['./flatformer_voxel_id_full_cpe_cos_synthetic.py']
model = dict(backbone3d=dict(cpe_batchnorm=True))
