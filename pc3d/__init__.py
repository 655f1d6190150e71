"""pc3d: 3D point-cloud and voxel perception.

Importing ``pc3d`` is cheap: it does not import open3d, transformers, pyarrow or any other heavy
optional package, and it does not load the compiled ops until ``pc3d.ops`` is used.
"""
__version__ = "0.1.0"
