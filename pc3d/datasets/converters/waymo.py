"""``create_data.py waymo``: Waymo v2 parquet or OpenPCDet layout -> pc3d info files."""
from ..waymo.convert import add_parser  # noqa: F401
