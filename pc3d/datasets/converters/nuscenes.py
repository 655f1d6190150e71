"""``create_data.py nuscenes``: native nuScenes tables -> pc3d info files."""
from ..nuscenes.convert import add_parser  # noqa: F401
