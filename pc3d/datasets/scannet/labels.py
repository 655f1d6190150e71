"""ScanNet label mapping: ``scannetv2-labels.combined.tsv`` (raw category -> NYU40 id) and the benchmark
class indices.

The tsv is tab-separated with a header row; its columns are ``id, raw_category, category, count,
nyu40id, eigen13id, nyuClass, nyu40class, eigen13class, ModelNet40, ModelNet10, ShapeNetCore55,
synsetoffset, wnsynsetid, wnsynsetkey, mpcat40, mpcat40index``. pc3d reads ``raw_category`` (the label
strings of ``*.aggregation.json``) and ``nyu40id``, found by header name.

Class indices: segmentation ``0..19`` in ``SCANNET_SEG_CLASSES`` order, every other NYU40 id (and
unannotated points) -> ``IGNORE_INDEX`` (-1); detection ``0..17`` in ``SCANNET_DET_CLASSES`` order.
"""
import csv
from pathlib import Path

import numpy as np

from pc3d.classes import SCANNET_DET_CLASSES, SCANNET_DET_NYU40_IDS, SCANNET_SEG_CLASSES, SCANNET_SEG_NYU40_IDS

IGNORE_INDEX = -1
TSV_NAME = "scannetv2-labels.combined.tsv"
TSV_COLUMNS = ("id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass", "nyu40class",
               "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55", "synsetoffset", "wnsynsetid",
               "wnsynsetkey", "mpcat40", "mpcat40index")

# NYU40 id -> seg / det class index (lookup tables over ids 0..40; -1 = not a benchmark class).
NYU40_TO_SEG = np.full(41, IGNORE_INDEX, dtype=np.int64)
NYU40_TO_SEG[list(SCANNET_SEG_NYU40_IDS)] = np.arange(len(SCANNET_SEG_NYU40_IDS))
NYU40_TO_DET = np.full(41, -1, dtype=np.int64)
NYU40_TO_DET[list(SCANNET_DET_NYU40_IDS)] = np.arange(len(SCANNET_DET_NYU40_IDS))

__all__ = ["IGNORE_INDEX", "TSV_NAME", "TSV_COLUMNS", "NYU40_TO_SEG", "NYU40_TO_DET", "read_label_map",
           "write_label_map", "SCANNET_SEG_CLASSES", "SCANNET_DET_CLASSES"]


def read_label_map(path):
    """Reads ``raw_category -> nyu40id`` from a ``scannetv2-labels.combined.tsv``.

    Returns:
        dict str -> int in [1, 40]. Raises ``ValueError`` naming the file and column on a missing
        column, an empty table, a non-integer or out-of-range ``nyu40id``, or a raw category listed
        twice with different ids.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label map (scannetv2-labels.combined.tsv) not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        for col in ("raw_category", "nyu40id"):
            if reader.fieldnames is None or col not in reader.fieldnames:
                raise ValueError(f"{path}: label map lacks the column {col!r} (header {reader.fieldnames})")
        mapping = {}
        for row_no, row in enumerate(reader, start=2):
            raw, nyu = row["raw_category"], row["nyu40id"]
            try:
                nyu_id = int(nyu)
            except (TypeError, ValueError):
                raise ValueError(f"{path}: line {row_no}: column 'nyu40id' = {nyu!r} is not an integer") from None
            if not 0 <= nyu_id <= 40:
                raise ValueError(f"{path}: line {row_no}: column 'nyu40id' = {nyu_id} is outside [0, 40]")
            if raw in mapping and mapping[raw] != nyu_id:
                raise ValueError(f"{path}: line {row_no}: raw_category {raw!r} listed twice with nyu40id "
                                 f"{mapping[raw]} and {nyu_id}")
            mapping[raw] = nyu_id
    if not mapping:
        raise ValueError(f"{path}: label map has no rows")
    return mapping


def write_label_map(path, rows):
    """Writes a tsv with ScanNet's header. ``rows``: iterable of (raw_category, nyu40id, nyu40class)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(TSV_COLUMNS)
        for i, (raw, nyu_id, nyu_class) in enumerate(rows, start=1):
            row = {c: "" for c in TSV_COLUMNS}
            row.update(id=i, raw_category=raw, category=raw, count=1, nyu40id=nyu_id, nyu40class=nyu_class)
            w.writerow([row[c] for c in TSV_COLUMNS])
