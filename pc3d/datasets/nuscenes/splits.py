"""Official nuScenes scene splits (scene names, stored as data in ``splits.json``).

``v1.0-trainval`` scenes split into ``train`` (700) and ``val`` (150), ``v1.0-mini`` into ``mini_train``
(8) and ``mini_val`` (2), ``v1.0-test`` is ``test`` (150). The names are the official lists (the same as
``nuscenes.utils.splits`` of nuscenes-devkit); a test checks the file against the devkit when installed.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

VERSION_SPLITS = {
    "v1.0-trainval": ("train", "val"),
    "v1.0-mini": ("mini_train", "mini_val"),
    "v1.0-test": ("test",),
}


@functools.lru_cache(maxsize=None)
def official_splits() -> dict:
    """{split name: tuple of scene names} for train, val, test, mini_train, mini_val, train_detect, train_track."""
    with open(Path(__file__).with_name("splits.json")) as f:
        data = json.load(f)
    return {k: tuple(v) for k, v in data.items() if not k.startswith("_")}


def version_splits(version: str) -> dict:
    """{split name: set of scene names} of the splits that partition ``version``'s scenes."""
    if version not in VERSION_SPLITS:
        raise ValueError(f"unknown nuScenes version {version!r}; expected one of {sorted(VERSION_SPLITS)}")
    table = official_splits()
    return {s: set(table[s]) for s in VERSION_SPLITS[version]}


def split_of_scenes(scene_names, version: str) -> dict:
    """{split name: [scene names of ``scene_names`` in it]}; scenes in no official split go to 'unsplit'."""
    splits = version_splits(version)
    out = {s: [] for s in splits}
    for name in scene_names:
        hit = [s for s, names in splits.items() if name in names]
        out.setdefault(hit[0] if hit else "unsplit", []).append(name)
    return out
