"""Run a trained detector on raw point clouds without the training machinery."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from pc3d.registry import MODELS

from ._config import load_config
from .backbone import PointCloudBackbone


def init_model(config, checkpoint: Optional[str] = None, device: Union[str, torch.device] = "cpu",
               fuse_conv_bn: bool = False) -> nn.Module:
    """Builds the detector of ``config`` (path, dict or mmengine Config), loads ``checkpoint`` (an mmengine
    checkpoint with a ``state_dict``, or a bare state dict) when given, and returns it in eval mode on
    ``device``. The config is kept as ``model.cfg``. ``fuse_conv_bn`` folds the BatchNorms into their
    convolutions (faster inference, same outputs up to rounding; the model can no longer be trained)."""
    cfg = load_config(config)
    if "model" not in cfg:
        raise ValueError("config has no 'model' entry")
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from pc3d.engine.checkpoint import allow_mmengine_checkpoints

        allow_mmengine_checkpoints()  # mmengine checkpoints carry a MessageHub: allow-list it, keep weights_only
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        model.load_state_dict(state, strict=True)
    model.cfg = cfg
    model = model.to(device).eval()
    if fuse_conv_bn:
        from pc3d.models.fuse import fuse_conv_bn as fuse

        fuse(model)
    return model


@torch.no_grad()
def inference_detector(model: nn.Module,
                       points: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Union[Dict, List[Dict]]:
    """Detects objects in one point cloud or a list of them.

    Args:
        model: from :func:`init_model`.
        points: (N, C) float32 [x, y, z, intensity, elongation, ...] in the ego/LiDAR frame (C = the
            model's encoder input), or a list of such clouds. Numpy arrays are accepted.

    Returns:
        per cloud a dict: ``boxes (K, 7)`` float32 (x, y, z, dx, dy, dz, heading) box centre, metres, heading
        = yaw about +z from +x, CCW, in [-pi, pi); ``scores (K,)`` float32 in [0, 1]; ``labels (K,)`` int64
        class index (0 Vehicle, 1 Pedestrian, 2 Cyclist for the Waymo-style configs). A single cloud gives
        a single dict, a list gives a list.
    """
    single = not isinstance(points, (list, tuple))
    clouds = [torch.as_tensor(p) for p in ([points] if single else points)]
    device = next(model.parameters()).device
    batched, batch_size = PointCloudBackbone.batch_points([c.to(device) for c in clouds])
    results = model(dict(points=batched, batch_size=batch_size), [{} for _ in clouds], mode="predict")
    out = [dict(boxes=r["pred_boxes"], scores=r["pred_scores"], labels=r["pred_labels"]) for r in results]
    return out[0] if single else out


BOX_CONVENTION = ("box = [x, y, z, dx, dy, dz, heading]: centre, sizes (length along heading, width, height) in "
                  "metres in the model frame (the input after input.transform), heading = yaw of the length "
                  "axis about +z from +x, counter-clockwise, radians in [-pi, pi)")
# Indoor detectors (TR3D) predict axis-aligned boxes.
BOX_CONVENTION_AXIS_ALIGNED = ("box = [x, y, z, dx, dy, dz]: centre and sizes along x, y, z in metres in the model "
                               "frame (the input after input.transform), axis-aligned")


@dataclass
class FrameResult:
    """One frame of :func:`inference_file`.

    Attributes:
        name: frame name (file stem; ``<bag stem>_<index>`` for bag messages), used for the output files.
        source: the file or bag message read.
        points: (N, C) float32 model-frame input rows (inside the model's range).
        boxes: (K, 7) float32, scores (K,) float32, labels (K,) int64 with ``score >= score_thr``.
        class_names: names of the labels.
        report: what reading/preparing did and warned (:class:`pc3d.io.PrepareReport`).
        files: output kind ('json', 'png', 'html') -> path written.
        seconds: read + prepare + model time.
        error: the message when the frame could not be read (then nothing else is set).
        timestamp_ns: the message time of a bag frame (None for files).
    """

    name: str
    source: str
    points: Optional[np.ndarray] = None
    boxes: Optional[np.ndarray] = None
    scores: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    class_names: Tuple[str, ...] = ()
    report: Optional[object] = None
    files: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: Optional[str] = None
    timestamp_ns: Optional[int] = None

    def to_json(self, score_thr: float) -> Dict[str, object]:
        """The per-frame JSON written by :func:`inference_file`."""
        dets = [{"class": self.class_names[int(c)] if 0 <= int(c) < len(self.class_names) else str(int(c)),
                 "label": int(c), "score": round(float(s), 5), "box": [round(float(v), 5) for v in b]}
                for b, s, c in zip(self.boxes, self.scores, self.labels)]
        aligned = len(self.boxes) and len(self.boxes[0]) == 6
        return {"frame": self.name, "source": self.source, "timestamp_ns": self.timestamp_ns,
                "box_convention": BOX_CONVENTION_AXIS_ALIGNED if aligned else BOX_CONVENTION,
                "class_names": list(self.class_names), "score_threshold": score_thr, "num_detections": len(dets),
                "detections": dets, "input": self.report.to_dict() if self.report is not None else None}


def model_class_names(model) -> Tuple[str, ...]:
    """The class names of ``model``: its config's ``class_names``, else those of its dataset type (ScanNet's 18
    detection classes for ``ScanNetDataset``), else pc3d's Vehicle / Pedestrian / Cyclist."""
    from pc3d.classes import SCANNET_DET_CLASSES, WAYMO_CLASSES

    cfg = getattr(model, "cfg", None)
    names = cfg.get("class_names") if cfg is not None and hasattr(cfg, "get") else None
    if names:
        return tuple(names)
    dataset = ((cfg.get("test_dataloader") or {}).get("dataset") or {}) if cfg is not None and hasattr(cfg, "get") else {}
    return SCANNET_DET_CLASSES if dataset.get("type") == "ScanNetDataset" else WAYMO_CLASSES


def _frame_names(path: Path, index: int, is_bag: bool) -> str:
    return f"{path.stem}_{index:05d}" if is_bag else path.stem


@torch.no_grad()
def inference_file(model: nn.Module, inputs, out_dir=None, columns=None, score_thr: float = 0.3, transform=None,
                   scale: Optional[float] = None, intensity_scale: Optional[float] = None, align_ground: bool = False,
                   topic: Optional[str] = None, spec=None, write_png: bool = True, write_html: bool = True,
                   color_by: str = "height", on_error: str = "raise", progress=None) -> List[FrameResult]:
    """Detects objects in point-cloud files, folders of them and ROS bags, and writes per frame a JSON of
    boxes, a BEV PNG and a self-contained 3D HTML view.

    Args:
        model: from :func:`init_model` (its ``cfg`` gives the input columns, intensity scale, range, ground
            height and class names: :func:`pc3d.io.input_spec_from_config`).
        inputs: a path or a list of paths: point files (``.bin .npy .npz .pcd .ply .las .laz``), folders
            of them, ROS 1 ``.bag`` files and ROS 2 bag folders (one frame per PointCloud2 message).
        out_dir: folder for ``<frame>.json``, ``<frame>_bev.png``, ``<frame>_3d.html`` (None: write nothing).
        columns: column map of ``.bin`` / plain ``.npy`` rows, e.g. ``"x,y,z,intensity,ring"`` (default: as
            many of ``x, y, z, intensity, elongation`` as the model reads); other formats name their fields.
        score_thr: detections below it are dropped.
        transform: 4 x 4 sensor -> model frame (``pc3d.io.make_transform``); scale: multiplies x, y, z
            first (0.001 for millimetres); intensity_scale: full scale of the recorded intensity (None:
            guessed 1 / 255 / 65535); align_ground: level the estimated ground plane and put it at the
            height the model was trained with.
        topic: the bags' PointCloud2 topic (needed when a bag has several).
        spec: a :class:`pc3d.io.InputSpec` overriding the one derived from the config.
        on_error: ``'raise'`` or ``'skip'`` (an unreadable frame becomes a :class:`FrameResult` with ``error``).
        progress: a callable ``progress(result)`` called after each frame (e.g. a progress bar's update).

    Returns:
        one :class:`FrameResult` per frame, in input order.
    """
    import time

    from pc3d.io import PointCloudError, expand_inputs, input_spec_from_config, is_bag, prepare_points, read_frames
    from pc3d.io.prepare import in_range_mask

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    spec = spec or input_spec_from_config(getattr(model, "cfg", {}))
    names = model_class_names(model)
    if columns is None:
        bin_columns = ",".join(spec.columns[:3] + ("intensity",) + spec.columns[4:]) if len(spec.columns) > 3 \
            else "x,y,z"
    else:
        bin_columns = columns
    paths = expand_inputs([inputs] if isinstance(inputs, (str, Path)) else list(inputs))
    out = Path(out_dir) if out_dir is not None else None
    results, used_names = [], set()
    for path in paths:
        bag = is_bag(path)
        ext = path.suffix.lower()
        cols = bin_columns if ext in (".bin", ".npy", ".npz") and not bag else columns
        frames = read_frames(path, columns=cols, topic=topic)
        index = 0
        while True:
            t0 = time.perf_counter()
            name = _frame_names(path, index, bag)
            if name in used_names:  # same stem in two folders: keep both outputs
                name = f"{name}_{len(used_names)}"
            try:
                cloud = next(frames)
            except StopIteration:
                break
            except PointCloudError as e:
                if on_error == "raise":
                    raise
                r = FrameResult(name=name, source=str(path), error=str(e))
                results.append(r)
                if progress:
                    progress(r)
                break
            used_names.add(name)
            index += 1
            try:
                pts, report = prepare_points(cloud, spec, transform=transform, scale=scale,
                                             intensity_scale=intensity_scale, align_ground=align_ground)
            except PointCloudError as e:
                if on_error == "raise":
                    raise
                r = FrameResult(name=name, source=cloud.source, error=str(e))
                results.append(r)
                if progress:
                    progress(r)
                continue
            if spec.point_cloud_range is not None:
                pts = pts[in_range_mask(pts[:, :3], spec.point_cloud_range)]
            if len(pts):
                det = inference_detector(model, torch.from_numpy(pts))
                keep = det["scores"] >= score_thr
                boxes, scores, labels = (det[k][keep].cpu().numpy() for k in ("boxes", "scores", "labels"))
            else:
                boxes, scores, labels = np.zeros((0, 7), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
            r = FrameResult(name=name, source=cloud.source, points=pts, boxes=boxes, scores=scores, labels=labels,
                            class_names=names, report=report, timestamp_ns=cloud.timestamp)
            r.seconds = time.perf_counter() - t0
            if out is not None:
                _write_outputs(r, out, score_thr, spec, write_png, write_html, color_by)
            results.append(r)
            if progress:
                progress(r)
    return results


def _write_outputs(r: FrameResult, out: Path, score_thr: float, spec, write_png: bool, write_html: bool,
                   color_by: str):
    import json

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{r.name}.json"
    path.write_text(json.dumps(r.to_json(score_thr), indent=1))
    r.files["json"] = str(path)
    title = f"{r.source}: {len(r.boxes)} detections >= {score_thr:g}"
    if write_png:
        from pc3d.visualization import draw_bev

        r.files["png"] = str(draw_bev(out / f"{r.name}_bev.png", r.points, pred_boxes=r.boxes, pred_scores=r.scores,
                                      pc_range=spec.point_cloud_range, score_threshold=score_thr, title=title))
    if write_html:
        from pc3d.visualization.scene3d import write_scene_html

        r.files["html"] = str(write_scene_html(out / f"{r.name}_3d.html", r.points, r.boxes, r.scores, r.labels,
                                               r.class_names, color_by=color_by, title=title))
