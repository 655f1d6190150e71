"""``create_data.py nuscenes-sim``: a simulated nuScenes-layout dataset."""
from ..nuscenes.simulate import add_parser  # noqa: F401
