"""Your own labelled LiDAR data: a documented folder layout and :class:`CustomDataset` (its metric is
``pc3d.evaluation.custom.CustomMetric``).

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

from ..registry import DATASETS
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
