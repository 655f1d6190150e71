"""Point-cloud semantic segmentors, registered in ``pc3d.registry.MODELS``."""
from .sparse_unet import SparseUNetSegmentor, voxelize_points

__all__ = ["SparseUNetSegmentor", "voxelize_points"]
