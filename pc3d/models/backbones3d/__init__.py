"""3D backbones over sparse voxels. Importing this package does not import spconv (done on first build)."""
from .dsvt import DSVT
from .flatformer import FlatFormer
from .scatterformer import ScatterFormer
from .sparse_conv import SparseConvBackbone

__all__ = ["SparseConvBackbone", "FlatFormer", "DSVT", "ScatterFormer"]
