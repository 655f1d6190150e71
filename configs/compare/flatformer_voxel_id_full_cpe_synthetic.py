# Backbone comparison (equal budget): flatformer_voxel_id_synthetic.py with Point Transformer V3's conditional
# position encoding before the block, x += Linear(full 3x3x3 submanifold conv(LN(x))) (C x C x 27 weights;
# the linear starts at zero), so each voxel reads the pattern of occupied cells around it before it
# attends. Not in the paper. Measured in README.md.
_base_ = ['./flatformer_voxel_id_synthetic.py']
model = dict(backbone3d=dict(cpe_kernel=(3, 3, 3), cpe_depthwise=False))
