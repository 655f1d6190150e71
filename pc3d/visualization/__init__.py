"""Visualization: bird's-eye-view PNGs of point clouds with ground-truth and predicted boxes, and
self-contained interactive 3D HTML views (``scene3d``, plotly imported when one is drawn)."""
from .bev import box_corners_bev, draw_bev
from .scene3d import box_corners_3d, box_edges_3d, write_scene_html

__all__ = ["box_corners_bev", "draw_bev", "box_corners_3d", "box_edges_3d", "write_scene_html"]
