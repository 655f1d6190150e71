"""The native nuScenes JSON tables (``<root>/<version>/<table>.json``) with token indexes.

A version folder (``v1.0-trainval``, ``v1.0-mini``, ``v1.0-test``) holds 13 tables, each a JSON list of
records keyed by a unique ``token``. The links pc3d follows (field -> table):

- ``sample``: ``scene_token`` -> scene, ``timestamp`` (µs), ``prev``/``next`` (sample tokens, '' none).
- ``sample_data``: ``sample_token`` -> sample, ``ego_pose_token`` -> ego_pose,
  ``calibrated_sensor_token`` -> calibrated_sensor, ``filename`` (relative to the root),
  ``is_key_frame``, ``timestamp``, ``prev``/``next`` (sample_data of the same sensor, keyframes and
  sweeps alike).
- ``calibrated_sensor``: ``sensor_token`` -> sensor (``channel``, e.g. ``LIDAR_TOP``),
  ``translation`` (3,), ``rotation`` (4,) [w, x, y, z]: sensor -> ego.
- ``ego_pose``: ``translation``, ``rotation``: ego -> global.
- ``sample_annotation``: ``sample_token``, ``instance_token`` -> instance (``category_token`` ->
  category ``name``), ``attribute_tokens`` -> attribute, ``translation``/``size`` [w, l, h]/``rotation``
  (global frame), ``num_lidar_pts``, ``num_radar_pts``, ``prev``/``next`` (same instance).
- ``scene``: ``name`` (e.g. ``scene-0001``), ``first_sample_token``, ``log_token`` -> log.

The devkit's reverse indexes are rebuilt here without it: ``sample_lidar`` (sample -> its keyframe
``LIDAR_TOP`` sample_data) and ``sample_anns`` (sample -> its annotations, in table order).
"""
from __future__ import annotations

import json
from pathlib import Path

TABLES = ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log",
          "scene", "sample", "sample_data", "sample_annotation", "map")
# Tables the LiDAR detection loader reads; the others (visibility, log, map) are loaded when present.
REQUIRED = ("category", "attribute", "instance", "sensor", "calibrated_sensor", "ego_pose", "scene", "sample",
            "sample_data", "sample_annotation")
VERSIONS = ("v1.0-trainval", "v1.0-mini", "v1.0-test")


class NuScenesFormatError(ValueError):
    """Malformed nuScenes data; the message names the file and the field."""


class NuScenesTables:
    """All tables of one nuScenes version, indexed by token.

    Args:
        root: dataset root (holds ``samples/``, ``sweeps/`` and the version folder).
        version: version folder name, e.g. ``v1.0-trainval``.
    Attributes:
        ``tables[name]`` list of records; ``sample_lidar`` {sample token: LIDAR_TOP keyframe
        sample_data record}; ``sample_anns`` {sample token: [annotation records]}.
    Raises:
        NuScenesFormatError naming the file for a missing or malformed table, a record without a token,
        a duplicate token, or a link to a token that does not exist.
    """

    def __init__(self, root, version: str = "v1.0-trainval", lidar_channel: str = "LIDAR_TOP"):
        self.root = Path(root)
        self.version = version
        self.table_root = self.root / version
        if not self.table_root.is_dir():
            raise NuScenesFormatError(f"nuScenes version folder {self.table_root} does not exist "
                                      f"(versions are {', '.join(VERSIONS)})")
        self.tables, self._index = {}, {}
        for name in TABLES:
            path = self.table_root / f"{name}.json"
            if not path.exists():
                if name in REQUIRED:
                    raise NuScenesFormatError(f"missing table {path} (the {name!r} table is required)")
                continue
            self.tables[name] = records = _read_table(path)
            self._index[name] = _token_index(records, path)
        self.lidar_channel = lidar_channel
        self._build_reverse_indexes()

    def path(self, table: str) -> Path:
        return self.table_root / f"{table}.json"

    def get(self, table: str, token: str, referrer: tuple | None = None) -> dict:
        """The record of ``table`` with ``token``.

        ``referrer`` = (table, record token, field) of the record holding the link, for the error message.
        """
        try:
            return self.tables[table][self._index[table][token]]
        except KeyError:
            where = (f"{self.path(referrer[0])}: record {referrer[1]!r} field {referrer[2]!r}" if referrer
                     else f"lookup in {self.path(table)}")
            raise NuScenesFormatError(f"{where}: no {table} record with token {token!r}") from None

    def link(self, table: str, record: dict, field: str, target: str) -> dict:
        """Follow ``record[field]`` (a token of table ``target``) from a record of ``table``."""
        token = self.field(table, record, field)
        return self.get(target, token, (table, record.get("token"), field))

    def field(self, table: str, record: dict, field: str):
        """``record[field]``, or an error naming the table file, the record and the missing field."""
        if field not in record:
            raise NuScenesFormatError(f"{self.path(table)}: record {record.get('token')!r} lacks field {field!r}")
        return record[field]

    def _build_reverse_indexes(self):
        channel_of = {}
        for cs in self.tables["calibrated_sensor"]:
            channel_of[cs["token"]] = self.field("sensor", self.link("calibrated_sensor", cs, "sensor_token", "sensor"),
                                                 "channel")
        self.sample_lidar = {}
        for sd in self.tables["sample_data"]:
            cs_token = self.field("sample_data", sd, "calibrated_sensor_token")
            if cs_token not in channel_of:
                self.get("calibrated_sensor", cs_token, ("sample_data", sd["token"], "calibrated_sensor_token"))
            if channel_of[cs_token] == self.lidar_channel and self.field("sample_data", sd, "is_key_frame"):
                self.get("sample", self.field("sample_data", sd, "sample_token"),
                         ("sample_data", sd["token"], "sample_token"))
                self.sample_lidar[sd["sample_token"]] = sd
        self.sample_anns = {s["token"]: [] for s in self.tables["sample"]}
        for ann in self.tables["sample_annotation"]:
            token = self.field("sample_annotation", ann, "sample_token")
            if token not in self.sample_anns:
                self.get("sample", token, ("sample_annotation", ann["token"], "sample_token"))
            self.sample_anns[token].append(ann)

    def lidar_of(self, sample: dict) -> dict:
        """The keyframe LIDAR_TOP sample_data record of ``sample``."""
        sd = self.sample_lidar.get(sample["token"])
        if sd is None:
            raise NuScenesFormatError(f"{self.path('sample_data')}: sample {sample['token']!r} has no key-frame "
                                      f"{self.lidar_channel} sample_data record")
        return sd

    def scene_samples(self, scene: dict) -> list:
        """The samples of ``scene`` in time order, following ``next`` from ``first_sample_token``."""
        out, token, seen = [], self.field("scene", scene, "first_sample_token"), set()
        ref = ("scene", scene["token"], "first_sample_token")
        while token:
            if token in seen:
                raise NuScenesFormatError(f"{self.path('sample')}: the next-chain of scene {scene.get('name')!r} "
                                          f"loops at sample {token!r}")
            seen.add(token)
            sample = self.get("sample", token, ref)
            out.append(sample)
            token, ref = self.field("sample", sample, "next"), ("sample", token, "next")
        return out


def _read_table(path: Path) -> list:
    try:
        with open(path) as f:
            records = json.load(f)
    except json.JSONDecodeError as e:
        raise NuScenesFormatError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(records, list):
        raise NuScenesFormatError(f"{path}: a table must be a JSON list of records, got {type(records).__name__}")
    return records


def _token_index(records: list, path: Path) -> dict:
    index = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "token" not in rec:
            raise NuScenesFormatError(f"{path}: record {i} has no field 'token'")
        if rec["token"] in index:
            raise NuScenesFormatError(f"{path}: field 'token' {rec['token']!r} is duplicated (records "
                                      f"{index[rec['token']]} and {i})")
        index[rec["token"]] = i
    return index
