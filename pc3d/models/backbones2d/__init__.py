"""2D BEV backbones and necks."""
from .second import SECONDBackbone
from .second_fpn import SECONDFPN

__all__ = ["SECONDBackbone", "SECONDFPN"]
