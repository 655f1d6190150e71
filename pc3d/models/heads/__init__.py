"""Detection heads: dense BEV features -> per-class heatmaps and box regressions -> boxes."""
from .center_iou import CenterHeadIoU
from .centerpoint import CenterHead

__all__ = ["CenterHead", "CenterHeadIoU"]
