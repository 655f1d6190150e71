# Backbone comparison (equal budget): flatformer_voxel_id_synthetic.py with the voxel's slice (z) in the
# sinusoidal position encoding too. The paper's pillars have no z; on this 8-slice grid the voxels of a column
# otherwise share one position. Measured in README.md.
_base_ = ['./flatformer_voxel_id_synthetic.py']
model = dict(backbone3d=dict(position_axes=('x', 'y', 'z')))
