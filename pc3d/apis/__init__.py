"""High-level entry points for using pc3d inside another program (a driving stack, a notebook).

* :func:`build_backbone` — voxelizer + voxel encoder + 3D backbone (+ BEV scatter) as one module.
* :func:`init_model` / :func:`inference_detector` — a trained detector on raw point clouds.
"""
from .backbone import BackboneOutput, PointCloudBackbone, build_backbone
from .inference import inference_detector, init_model

__all__ = ["BackboneOutput", "PointCloudBackbone", "build_backbone", "init_model", "inference_detector"]
