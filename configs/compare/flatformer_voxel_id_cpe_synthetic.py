# Backbone comparison (equal budget): flatformer_voxel_id_synthetic.py with a conditional position encoding
# before the block (x += Linear(depthwise 3x3x3 submanifold conv(LN(x))), as Point Transformer V3's xCPE but
# depthwise; its linear starts at zero), so each voxel knows which cells around it are occupied before it
# attends. Not in the paper. Measured in README.md.
_base_ = ['./flatformer_voxel_id_synthetic.py']
model = dict(backbone3d=dict(cpe_kernel=(3, 3, 3)))
