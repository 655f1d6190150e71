"""High-level entry points for using pc3d inside another program (a driving stack, a notebook).

* :func:`build_backbone` — voxelizer + voxel encoder + 3D backbone (+ BEV scatter) as one module.
* :func:`init_model` / :func:`inference_detector` — a trained detector on raw point clouds.
* :func:`inference_file` — the same on point-cloud files, folders and ROS bags (JSON, BEV PNG, 3D HTML).
* :func:`convert_checkpoint` — an official checkpoint (OpenPCDet, mmdet3d) -> a pc3d checkpoint.
"""
from .backbone import BackboneOutput, PointCloudBackbone, build_backbone
from .convert import convert_checkpoint
from .inference import inference_detector, inference_file, init_model

__all__ = ["BackboneOutput", "PointCloudBackbone", "build_backbone", "init_model", "inference_detector",
           "inference_file",
           "convert_checkpoint"]
