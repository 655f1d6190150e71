"""Shared test setup: the checkout under test comes first on sys.path, slow tests are opt-in."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tests run against this checkout's pc3d (and its built pc3d/_C*.so), whatever is installed.
sys.path.insert(0, str(ROOT))

# ../shared beside the checkout (CI, the main checkout); PC3D_SHARED_DIR points elsewhere (worktrees).
SHARED = Path(os.environ.get("PC3D_SHARED_DIR", ROOT.parent / "shared"))
REAL_LIDAR_DIR = SHARED / "data" / "real_lidar"
# Cropped copies of two of those scans ship with the repository (tests/data/real_lidar/README.md).
BUNDLED_LIDAR_DIR = ROOT / "tests" / "data" / "real_lidar"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("PC3D_RUNSLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="slow test: run with --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def real_scans():
    """The real LiDAR scans of ../shared/data/real_lidar (else the cropped copies in tests/data/real_lidar) as
    (N, 5) float32 tensors [x, y, z, i, ring]."""
    import numpy as np
    import torch

    files = sorted(REAL_LIDAR_DIR.glob("*.bin")) or sorted(BUNDLED_LIDAR_DIR.glob("*.bin"))
    if not files:
        pytest.skip(f"no real LiDAR scans at {REAL_LIDAR_DIR} or {BUNDLED_LIDAR_DIR}")
    return {f.stem: torch.from_numpy(np.fromfile(f, dtype=np.float32).reshape(-1, 5)) for f in files}


@pytest.fixture
def restore_torch_flags():
    """Puts torch's deterministic-algorithms flag and thread count back after a test that changes them."""
    import torch

    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)
