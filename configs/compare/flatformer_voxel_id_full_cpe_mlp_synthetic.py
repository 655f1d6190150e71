# Backbone comparison (equal budget): flatformer_voxel_id_full_cpe_synthetic.py with DSVT's learned position
# encoding (an MLP of each voxel's (x, y, z) offset from its window's centre, one for the unshifted and one for
# the shifted windows) in place of the sinusoid of absolute (x, y): the encoding of DSVT-V, the comparison's
# steadiest transformer. Not in the paper. Measured in README.md.
_base_ = ['./flatformer_voxel_id_full_cpe_synthetic.py']
model = dict(backbone3d=dict(position_encoding='mlp', position_axes=('x', 'y', 'z')))
