"""2D BEV backbones and necks."""
from .base_bev_res import BaseBEVResBackbone, IdentityNeck
from .second import SECONDBackbone
from .second_fpn import SECONDFPN

__all__ = ["SECONDBackbone", "SECONDFPN", "BaseBEVResBackbone", "IdentityNeck"]
