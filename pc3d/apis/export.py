"""Whole-detector export: one ``torch.export`` program from a scan's points to its final boxes.

:class:`DetectorProgram` runs a :class:`~pc3d.models.detectors.CenterPoint` detector (dynamic voxelizer, voxel
encoder, optional sparse 3D backbone, BEV scatter, 2D backbone, neck, ``CenterHead`` or ``CenterHeadIoU``) on one
scan with the same arithmetic as the eager ``model(..., mode='predict')``, written so that every data-dependent size
is a tensor size instead of a Python branch: the number of points is a dynamic input dimension, and the voxel count,
the partition's group/set counts, the candidates above the score threshold and the boxes NMS keeps are unbacked
sizes produced by the ops' fake kernels. The exported program therefore runs on any scan.

* :func:`export_detector` — ``torch.export.ExportedProgram`` of a detector (save with ``torch.export.save``).
* :func:`compile_aoti` — an AOTInductor package (``.pt2``) of that program for CPU.
* :func:`load_aoti` — loads such a package; needs only torch and pc3d's compiled op library (``pc3d/_C*.so``),
  no pc3d Python code (see :func:`op_library_path`).

Limits: batch 1 (one scan per call), float32, and the scan must have at least one point inside the model's
``pc_range`` (the program's runtime assertion fails otherwise). The boxes/scores checks of
``pc3d.ops.nms_bev_rotated``'s Python face are not in the program; the compiled NMS kernel checks for non-finite
boxes itself.
"""
import glob
import importlib
import os
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

# Largest scan the exported program accepts (its dynamic dimension's upper bound); the kernels index points in int32.
MAX_POINTS = 2 ** 24


def _per_class(value, c: int):
    return value[c] if isinstance(value, (list, tuple)) else value


class DetectorProgram(nn.Module):
    """A CenterPoint-style detector as one traceable function of a scan.

    Args:
        model: a ``CenterPoint`` whose voxelizer is a ``DynamicVoxelizer`` and whose head is a ``CenterHead``
            or ``CenterHeadIoU``, in eval mode (BatchNorms folded or not).

    forward(points (N, C) float32 [x, y, z, features...], the columns the voxel encoder takes, without a batch
    column) -> (boxes (K, 7) float32 [x, y, z, dx, dy, dz, heading], scores (K,) float32, labels (K,) int64),
    equal to ``model(dict(points=[0 | points], batch_size=1), mode='predict')[0]``'s pred_boxes, pred_scores and
    pred_labels.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        from pc3d.models.heads.center_iou import CenterHeadIoU
        from pc3d.models.heads.centerpoint import CenterHead
        from pc3d.models.voxelizers import DynamicVoxelizer
        from pc3d.ops.voxelize import grid_shape

        voxelizer = getattr(model, "voxelizer", None)
        if not isinstance(voxelizer, DynamicVoxelizer):
            raise ValueError(f"DetectorProgram exports detectors with a DynamicVoxelizer, got "
                             f"{type(voxelizer).__name__}")
        head = getattr(model, "head", None)
        if isinstance(head, CenterHeadIoU):
            self.head_kind = "center_iou"
        elif isinstance(head, CenterHead):
            if head.with_velocity:
                raise ValueError("DetectorProgram: CenterHead with_velocity (nuScenes) is not exported")
            self.head_kind = "center"
        else:
            raise ValueError(f"DetectorProgram exports CenterHead and CenterHeadIoU heads, got {type(head).__name__}")
        if model.training:
            raise ValueError("DetectorProgram needs the model in eval mode (model.eval())")
        self.model = model
        self.grid_wh_d = list(grid_shape(voxelizer.voxel_size, voxelizer.pc_range, 1))

    # ------------------------------------------------------------------------------------------------ network
    def voxelize(self, points: torch.Tensor) -> Dict:
        """points (N, C) -> the DynamicVoxelizer's dict for one sample (in-range points, point2voxel, coords)."""
        vz = self.model.voxelizer
        _, coords, p2v = torch.ops.pc3d.voxelize_dynamic(points, None, vz.voxel_size, vz.pc_range,
                                                         self.grid_wh_d, 1)
        keep = p2v >= 0
        kept_points, kept_p2v = points[keep], p2v[keep]
        # Every voxel holds >= 1 kept point; a scan without a point in range is outside the program's domain.
        torch._check(coords.shape[0] >= 1)
        torch._check(kept_points.shape[0] >= coords.shape[0])
        return dict(points=kept_points, point2voxel=kept_p2v, coords=coords, spatial_shape=vz.spatial_shape,
                    batch_size=1)

    def network(self, points: torch.Tensor) -> Dict[str, torch.Tensor]:
        """points (N, C) -> the head's raw maps (batch 1)."""
        m = self.model
        voxels = m.voxel_encoder(self.voxelize(points))
        if m.backbone3d is not None:
            voxels = m.backbone3d(voxels)
        return m.head(m.neck(m.backbone2d(m.bev(voxels))))

    def forward(self, points: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        preds = self.network(points)
        if self.head_kind == "center_iou":
            return self.decode_center_iou(preds)
        return self.decode_center(preds["heatmap"][0], preds["reg"][0])

    # ----------------------------------------------------------------------------------------------- decoding
    def decode_center(self, heatmap: torch.Tensor, reg: torch.Tensor):
        """``CenterHead.decode_sample``: top ``pre_max_size`` cells, score threshold (>=), per-class rotated NMS,
        all kept boxes by descending score, the first ``post_max_size``."""
        from pc3d.models.heads.centerpoint import top_cells
        from pc3d.models.heads.targets import decode_boxes

        head = self.model.head
        cfg = head.test_cfg
        k_cls, h, w = heatmap.shape
        scores, labels, cell = top_cells(heatmap, cfg["pre_max_size"], cfg["score_threshold"])
        boxes = decode_boxes(reg.flatten(1).t()[cell], cell // w, cell % w, head.grid)
        kept = []
        for c in range(k_cls):
            idx = torch.nonzero(labels == c).flatten()
            keep_c = torch.ops.pc3d.nms_bev_rotated(boxes[idx, :7].contiguous(), scores[idx].contiguous(),
                                                    float(_per_class(cfg["nms_iou_threshold"], c)))
            kept.append(idx[keep_c])
        kept = torch.cat(kept)
        kept = kept[torch.argsort(scores[kept], descending=True)][: cfg["post_max_size"]]
        return boxes[kept], scores[kept], labels[kept].long()

    def decode_center_iou(self, preds: Dict[str, torch.Tensor]):
        """``CenterHeadIoU.predict``: its pre-NMS candidates, then per class the ``nms_pre_max_size`` best (stable
        descending sort), rotated NMS, the first ``nms_post_max_size``; classes concatenated in order."""
        head = self.model.head
        cfg = head.test_cfg
        cand = head.predict_pre_nms(preds)[0]
        boxes, scores, labels = cand["pred_boxes"], cand["pred_scores"], cand["pred_labels"]
        # The boxes NMS measures: with dx and dy exchanged under nms_swap_size_xy (OpenPCDet's NMS, see the head).
        nms_boxes = boxes[:, [0, 1, 2, 4, 3, 5, 6]] if cfg.get("nms_swap_size_xy", False) else boxes
        kept = []
        for c in range(head.num_classes):
            idx = torch.nonzero(labels == c).flatten()
            order = torch.argsort(scores[idx], descending=True, stable=True)
            idx = idx[order][: int(_per_class(cfg["nms_pre_max_size"], c))]
            keep_c = torch.ops.pc3d.nms_bev_rotated(nms_boxes[idx].contiguous(), scores[idx].contiguous(),
                                                    float(_per_class(cfg["nms_iou_threshold"], c)))
            kept.append(idx[keep_c][: int(_per_class(cfg["nms_post_max_size"], c))])
        kept = torch.cat(kept)
        return boxes[kept], scores[kept], labels[kept]


def export_detector(model: nn.Module, example_points: torch.Tensor,
                    max_points: int = MAX_POINTS) -> torch.export.ExportedProgram:
    """``torch.export`` of ``model`` (eval mode) from a scan's points to its boxes, the point count dynamic.

    Args:
        model: a CenterPoint detector (see :class:`DetectorProgram`).
        example_points: (N, C) float32 example scan with at least 2 points, at least one of them in range.
        max_points: upper bound of the dynamic point count.

    Returns:
        ``ExportedProgram``; ``program.module()(points)`` -> (boxes (K, 7), scores (K,), labels (K,)).
    """
    if not isinstance(example_points, torch.Tensor) or example_points.dim() != 2 \
            or example_points.dtype != torch.float32:
        raise ValueError(f"example_points must be a (N, C) float32 tensor, got "
                         f"{getattr(example_points, 'dtype', type(example_points).__name__)} "
                         f"{tuple(getattr(example_points, 'shape', ()))}")
    if example_points.shape[0] < 2:
        raise ValueError(f"example_points needs at least 2 points, got {example_points.shape[0]}")
    importlib.import_module("pc3d.ops")  # registers the ops and their fake kernels

    program = DetectorProgram(model).eval()
    num_points = torch.export.Dim("num_points", min=2, max=int(max_points))
    with torch.no_grad():
        return torch.export.export(program, (example_points.contiguous(),), dynamic_shapes=({0: num_points},),
                                   strict=False)


def compile_aoti(program: torch.export.ExportedProgram, package_path: str) -> str:
    """AOTInductor-compiles ``program`` for CPU into the package ``package_path`` (``.pt2``); returns its path.

    pc3d's ops stay calls into the compiled op library (Inductor's fallback through the dispatcher), so the process
    that runs the package must load that library first (:func:`load_aoti` does)."""
    importlib.import_module("pc3d.ops")  # the ops Inductor calls through the dispatcher

    if not str(package_path).endswith(".pt2"):
        raise ValueError(f"the AOTInductor package path must end with .pt2, got {package_path!r}")
    return torch._inductor.aoti_compile_and_package(program, package_path=str(package_path))


def op_library_path() -> str:
    """Path of pc3d's compiled op library (``pc3d/_C*.so``), found without importing pc3d's Python code."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = sorted(glob.glob(os.path.join(here, "_C*.so")) + glob.glob(os.path.join(here, "_C*.pyd")))
    if not found:
        raise FileNotFoundError(f"pc3d's compiled op library (_C*.so) is not in {here}: build it first "
                                "(`pip install --no-build-isolation -e .`)")
    return found[0]


def load_aoti(package_path: str, op_library: Optional[str] = None):
    """Loads an AOTInductor package of a detector; the result is called as ``runner(points)`` and returns
    [boxes, scores, labels].

    Args:
        package_path: a ``.pt2`` from :func:`compile_aoti`.
        op_library: pc3d's compiled op library; default :func:`op_library_path`. It is loaded with
            ``torch.ops.load_library`` (registers ``torch.ops.pc3d.*``), nothing else of pc3d is imported.
    """
    if not os.path.isfile(package_path):
        raise FileNotFoundError(f"AOTInductor package {package_path!r} does not exist")
    lib = op_library or op_library_path()
    if not hasattr(torch.ops.pc3d, "voxelize_dynamic"):
        torch.ops.load_library(lib)
    return torch._inductor.aoti_load_package(str(package_path))


def program_ops(program: torch.export.ExportedProgram) -> List[str]:
    """Names of the pc3d ops called in ``program``'s graph (e.g. to check that the partition survives as one op)."""
    return sorted({str(n.target) for n in program.graph.nodes
                   if n.op == "call_function" and str(n.target).startswith("pc3d.")})

