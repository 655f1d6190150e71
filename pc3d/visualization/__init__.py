"""Visualization: bird's-eye-view PNGs of point clouds with ground-truth and predicted boxes."""
from .bev import box_corners_bev, draw_bev

__all__ = ["box_corners_bev", "draw_bev"]
