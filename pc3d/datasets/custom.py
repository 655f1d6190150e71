"""Your own labelled LiDAR data: a documented folder layout, :class:`CustomDataset` and :class:`CustomMetric`.

Layout (``docs/custom_dataset.md``)::

    <root>/points/<frame_id>.<ext>   one cloud per frame, any format of pc3d.io (.bin .npy .npz .pcd .ply
                                     .las .laz); .bin/.npy rows are named by the ``columns`` map
    <root>/labels/<frame_id>.json    {"boxes": [{"class": "Car", "box": [x, y, z, dx, dy, dz, heading]}, ...]}
       or <root>/labels/<frame_id>.txt   one box per line: ``x y z dx dy dz heading class``
    <root>/splits/<split>.txt        frame ids of a split, one per line (e.g. train.txt, val.txt)

Boxes use pc3d's convention: centre and sizes in metres in the points' frame (z up), ``dx`` along the
heading, ``heading`` the yaw of ``dx`` about +z from +x, counter-clockwise, radians. Class names are free;
the config's ``class_names`` says which are learnt (in that label order); boxes of other classes (e.g.
``DontCare``) are left out.

``python tools/create_data.py custom --root <root> --columns x,y,z,intensity`` checks every file and writes
``<root>/custom_<split>_infos.json`` per split (and with ``--gt-database`` the GT-sampling database
``gt_database_train.npz``); :class:`CustomDataset` reads the info files.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..registry import DATASETS, METRICS
from .base import PipelineDataset
from .transforms import Compose

INFO_VERSION = 1
LABEL_EXTENSIONS = (".json", ".txt")


def info_path(root, split) -> Path:
    return Path(root) / f"custom_{split}_infos.json"


def read_labels(path) -> List[Dict[str, object]]:
    """Boxes of a label file: ``[{"class": str, "box": [7 floats]}, ...]``; raises ValueError naming the file
    and the line / entry that is wrong."""
    path = Path(path)
    out = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
        boxes = data.get("boxes") if isinstance(data, dict) else None
        if not isinstance(boxes, list):
            raise ValueError(f"{path}: expected {{\"boxes\": [{{\"class\": ..., \"box\": [x, y, z, dx, dy, dz, "
                             f"heading]}}, ...]}}")
        for k, b in enumerate(boxes):
            if not isinstance(b, dict) or "class" not in b or "box" not in b:
                raise ValueError(f"{path}: boxes[{k}] needs 'class' and 'box', got {b!r}")
            out.append({"class": str(b["class"]), "box": _box(b["box"], f"{path}: boxes[{k}].box")})
    elif path.suffix.lower() == ".txt":
        for n, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) != 8:
                raise ValueError(f"{path}:{n}: expected 'x y z dx dy dz heading class', got {line!r}")
            out.append({"class": parts[7], "box": _box(parts[:7], f"{path}:{n}")})
    else:
        raise ValueError(f"{path}: label files are .json or .txt")
    return out


def _box(values, where) -> List[float]:
    try:
        b = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: box values must be 7 numbers, got {values!r}") from None
    if len(b) != 7 or not np.isfinite(b).all() or min(b[3:6]) <= 0:
        raise ValueError(f"{where}: box must be 7 finite numbers [x, y, z, dx, dy, dz, heading] with positive "
                         f"sizes, got {values!r}")
    return b


def write_labels(path, boxes, names) -> Path:
    """Writes ``boxes (M, 7)`` with class ``names (M,)`` as a .json or .txt label file (by extension)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps({"boxes": [{"class": str(n), "box": [round(float(v), 6) for v in b]}
                                              for b, n in zip(boxes, names)]}, indent=1))
    else:
        path.write_text("".join(" ".join(f"{v:.6f}" for v in b) + f" {n}\n" for b, n in zip(boxes, names)))
    return path


def read_infos(root, split):
    path = info_path(root, split)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: create it with `python tools/create_data.py custom --root {root}`")
    try:
        infos = json.loads(path.read_text())
        frames = infos["frames"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"corrupt custom info file {path}: {e}") from e
    return infos, frames


@DATASETS.register_module()
class CustomDataset(PipelineDataset):
    """Frames of ``<data_root>/custom_<split>_infos.json`` (module docstring) with a transform ``pipeline``.

    An item: ``points (N, C)`` float32 in the model's columns (``point_input`` / the info file's
    ``columns``; absent features are 0, intensity scaled to [0, 1]), ``gt_boxes (M, 7)``, ``gt_labels (M,)``
    (index into ``classes``), ``gt_num_points (M,)``, ``gt_difficulty (M,)`` (all 1), ``frame_id``.

    Args:
        data_root: the layout's root.
        split: the split name (an info file must exist for it).
        pipeline: transform configs or callables (as the other datasets).
        point_cloud_range: the detection range the pipeline's range transforms use where their configs leave it
            unset (``dict(type='RangeFilter')``).
        classes: the learnt class names in label order (the config's ``class_names``; default the info
            file's).
        columns: column map of ``.bin`` / ``.npy`` point files (default: the info file's).
        model_columns: the model's input columns (default x, y, z, intensity, elongation).
        intensity_scale: full scale of the recorded intensities (default: the info file's, else guessed
            per frame as 1, 255 or 65535).
        max_frames, seed, test_mode: as :class:`SyntheticDataset`.
    """

    def __init__(self, data_root, split="train", pipeline=(), classes: Optional[Sequence[str]] = None,
                 columns=None, model_columns=("x", "y", "z", "intensity", "elongation"),
                 intensity_scale: Optional[float] = None, max_frames=None, seed=None, test_mode=False,
                 point_cloud_range=None):
        from pc3d.io import InputSpec

        self.data_root = Path(data_root)
        self.split = split
        self.infos, frames = read_infos(self.data_root, split)
        meta = self.infos.get("meta", {})
        self.classes = tuple(classes if classes is not None else meta.get("classes", ()))
        if not self.classes:
            raise ValueError(f"{info_path(data_root, split)}: no class list: set class_names in the config")
        self.columns = columns if columns is not None else meta.get("columns")
        self.intensity_scale = intensity_scale if intensity_scale is not None else meta.get("intensity_scale")
        self.spec = InputSpec(columns=model_columns)
        self.frames = frames[:max_frames] if max_frames is not None else frames
        self.pipeline = Compose(pipeline, point_cloud_range=point_cloud_range)
        self.seed = seed
        self.test_mode = test_mode
        self.metainfo = {"classes": self.classes}

    def __len__(self):
        return len(self.frames)

    def items_description(self):
        return f"frames of split {self.split!r} of {self.data_root}"

    def get_data_info(self, index):
        from pc3d.io import prepare_points, read_points

        from .box_utils import points_in_boxes_indices

        f = self.frames[index]
        cloud = read_points(self.data_root / f["points"], self.columns)
        points, _ = prepare_points(cloud, self.spec, intensity_scale=self.intensity_scale, estimate_ground_plane=False)
        keep = [k for k, n in enumerate(f["names"]) if n in self.classes]
        boxes = np.asarray(f["boxes"], np.float32).reshape(-1, 7)[keep]
        labels = np.array([self.classes.index(f["names"][k]) for k in keep], np.int64)
        num = np.array([len(i) for i in points_in_boxes_indices(points, boxes)], np.int64) if len(boxes) \
            else np.zeros(0, np.int64)
        return {"points": points, "gt_boxes": boxes, "gt_labels": labels, "gt_num_points": num,
                "gt_difficulty": np.ones(len(boxes), np.int64), "frame_id": f["frame_id"]}


@METRICS.register_module()
class CustomMetric(BaseMetric):
    """Per-class 3D-IoU AP (and heading-weighted APH) for any class list, with the Waymo matching
    (Hungarian on rotated 3D IoU per frame and score cut-off, AP over 101 cut-offs); boxes without any
    point are not evaluated.

    Args:
        iou_threshold: the IoU a match needs (one float for every class, or ``{class name: IoU}``; classes
            not named use 0.5).
        classes: class names in label order (default: the dataset's ``metainfo['classes']``).

    Returns keys ``'<class>/AP'``, ``'<class>/APH'``, ``'mAP'``, ``'mAPH'``.
    """

    default_prefix: Optional[str] = None

    def __init__(self, iou_threshold=0.5, classes: Optional[Sequence[str]] = None, collect_device: str = "cpu",
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_threshold = iou_threshold
        self.classes = tuple(classes) if classes is not None else None

    def process(self, data_batch, data_samples: Sequence) -> None:
        from pc3d.evaluation.waymo import _get, _np

        for s in data_samples:
            self.results.append({k: _np(_get(s, k), dt).reshape(shape) for k, dt, shape in (
                ("pred_boxes", np.float32, (-1, 7)), ("pred_scores", np.float32, (-1,)),
                ("pred_labels", np.int64, (-1,)), ("gt_boxes", np.float32, (-1, 7)), ("gt_labels", np.int64, (-1,)),
                ("gt_num_points", np.int64, (-1,)))})

    def compute_metrics(self, results: list) -> Dict[str, float]:
        classes = self.classes or tuple((self.dataset_meta or {}).get("classes", ()))
        if not classes:
            raise ValueError("CustomMetric needs class names: pass classes=... or evaluate a dataset with metainfo")
        flat = custom_detection_metrics(results, classes, self.iou_threshold)
        head = f"{'Class':<16}{'AP':>8}{'APH':>8}"
        rows = [head] + [f"{c:<16}{flat[f'{c}/AP']:>8.4f}{flat[f'{c}/APH']:>8.4f}" for c in classes]
        rows.append(f"{'Mean':<16}{flat['mAP']:>8.4f}{flat['mAPH']:>8.4f}")
        print_log("3D detection AP\n" + "\n".join(rows), logger="current")
        return flat


def custom_detection_metrics(frames: Sequence[dict], classes: Sequence[str], iou_threshold=0.5) -> Dict[str, float]:
    """AP / APH per class of per-frame dicts (``pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels,
    gt_num_points``); see :class:`CustomMetric`."""
    from pc3d.evaluation.ap import average_precision, precision_recall
    from pc3d.evaluation.waymo import (DEFAULT_SCORE_CUTOFFS, class_measurements, default_iou_fn, level_counts,
                                       prepare_frames)

    def cat(key, width=None, dtype=np.float32):
        arrs = [np.asarray(f[key], dtype).reshape((-1, width) if width else -1) for f in frames]
        return np.concatenate(arrs) if arrs else np.zeros((0, width) if width else 0, dtype)

    def frame_index(key):
        return np.concatenate([np.full(len(f[key]), i) for i, f in enumerate(frames)] or [[]]).astype(np.int64)

    for f in frames:
        for key in ("pred_labels", "gt_labels"):
            lab = np.asarray(f[key])
            if len(lab) and (lab.min() < 0 or lab.max() >= len(classes)):
                raise ValueError(f"{key} must index the {len(classes)} classes {list(classes)}, got {lab}")
    gt = {"frame_id": frame_index("gt_boxes"), "type": cat("gt_labels", dtype=np.int64), "bbox": cat("gt_boxes", 7),
          "num_points": cat("gt_num_points", dtype=np.int64)}
    pred = {"frame_id": frame_index("pred_boxes"), "type": cat("pred_labels", dtype=np.int64),
            "bbox": cat("pred_boxes", 7), "score": cat("pred_scores")}
    g, p = prepare_frames(gt, pred)
    thr = iou_threshold if isinstance(iou_threshold, dict) else {c: float(iou_threshold) for c in classes}
    flat = {}
    for k, name in enumerate(classes):
        m = class_measurements(g, p, k, float(thr.get(name, 0.5)), DEFAULT_SCORE_CUTOFFS, default_iou_fn)
        tp, fp, fn, sum_ha = level_counts(m, 2)
        prec, prec_ha, rec = precision_recall(tp, fp, fn, sum_ha)
        flat[f"{name}/AP"] = float(average_precision(prec, rec, 0.05))
        flat[f"{name}/APH"] = float(average_precision(prec_ha, rec, 0.05))
    flat["mAP"] = float(np.mean([flat[f"{c}/AP"] for c in classes]))
    flat["mAPH"] = float(np.mean([flat[f"{c}/APH"] for c in classes]))
    return flat
