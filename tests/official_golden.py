"""Golden cases from the official code (random weights in the official container, inputs, official outputs).

The root is ``PC3D_OFFICIAL_GOLDEN`` (default ``../shared/golden/official_models``); the ``*_small`` cases are also
shipped in ``tests/data/official_models`` so a fresh clone runs them. Every case found under the root whose name a
test knows is checked. When ``PC3D_OFFICIAL_GOLDEN`` is set, a case a test expects but does not find fails instead of
skipping (other fixture sets of the same layout are run through these tests).

Tolerance (per array): max |ours - official| <= 1e-4 * (1 + max |official|).
"""
import os
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "tests" / "data" / "official_models"
ENV = "PC3D_OFFICIAL_GOLDEN"


def golden_root() -> Path:
    return Path(os.environ.get(ENV, ROOT.parent / "shared" / "golden" / "official_models"))


def case_dirs(prefix: str) -> List[Path]:
    """Case folders named ``prefix`` or ``prefix_*`` under the root; bundled small cases fill in the ones absent there
    (only when the variable is not set: a set variable means exactly that set is under test)."""
    found = {}
    roots = [golden_root()] if ENV in os.environ else [golden_root(), BUNDLED]
    for root in roots:
        if not root.is_dir():
            continue
        for case in sorted(root.iterdir()):
            if case.is_dir() and (case.name == prefix or case.name.startswith(prefix + "_")):
                found.setdefault(case.name, case)
    return [found[k] for k in sorted(found)]


def require_case(prefix: str, name: str) -> Path:
    """The folder of case ``name``; fails when ``PC3D_OFFICIAL_GOLDEN`` is set and it is missing, else skips."""
    for case in case_dirs(prefix):
        if case.name == name:
            return case
    message = f"official golden case {name!r} not found under {golden_root()}"
    if ENV in os.environ:
        pytest.fail(message + f" ({ENV} is set, so every case must be present)")
    pytest.skip(message + " (../shared is absent; the *_small cases ship in tests/data/official_models)")


def load_case(case: Path) -> Dict[str, Dict[str, np.ndarray]]:
    """``{'input': {...}, 'output': {...}}`` arrays of a case folder; ``checkpoint`` is the path of checkpoint.pth."""
    out = {}
    for part in ("input", "output"):
        with np.load(case / f"{part}.npz") as data:
            out[part] = {k: data[k] for k in data.files}
    out["checkpoint"] = case / "checkpoint.pth"
    return out


def tolerance(official) -> float:
    official = np.asarray(official, dtype=np.float64)
    return 1e-4 * (1.0 + (float(np.abs(official).max()) if official.size else 0.0))


def max_abs_diff(ours, official) -> float:
    ours, official = np.asarray(ours, dtype=np.float64), np.asarray(official, dtype=np.float64)
    assert ours.shape == official.shape, f"shape {ours.shape} != official {official.shape}"
    return float(np.abs(ours - official).max()) if official.size else 0.0


def assert_close(ours, official, name: str) -> float:
    """Asserts the tolerance for one array; returns the max abs diff (for the closing note)."""
    diff, tol = max_abs_diff(ours, official), tolerance(official)
    assert diff <= tol, f"{name}: max abs diff {diff:.3e} > tolerance {tol:.3e}"
    return diff


def sort_rows_by_coords(coords: np.ndarray, *arrays: np.ndarray):
    """Rows of ``coords`` (N, 4) (b, z, y, x) and the matching rows of ``arrays`` in lexicographic coordinate order."""
    coords = np.asarray(coords).astype(np.int64)
    order = np.lexsort(coords.T[::-1])
    return (coords[order],) + tuple(np.asarray(a)[order] for a in arrays)


def assert_voxels_close(ours_coords, ours_feats, off_coords, off_feats, name: str) -> float:
    """Backbone outputs matched by voxel coordinates: the same coordinate set, features within the tolerance."""
    oc, of = sort_rows_by_coords(ours_coords, ours_feats)
    gc, gf = sort_rows_by_coords(off_coords, off_feats)
    assert oc.shape == gc.shape, f"{name}: {len(oc)} voxels, official {len(gc)}"
    assert np.array_equal(oc, gc), f"{name}: voxel coordinates differ from the official ones"
    return assert_close(of, gf, name)
