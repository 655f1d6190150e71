"""Detection heads: dense BEV features -> per-class heatmaps and box regressions -> boxes."""
from .centerpoint import CenterHead

__all__ = ["CenterHead"]
