"""3D backbones over sparse voxels. Importing this package does not import spconv (done on first build)."""
from .sparse_conv import SparseConvBackbone

__all__ = ["SparseConvBackbone"]
