"""Every CPU path of the partition kernels against the plain-PyTorch references.

The kernels sort with counting passes on dense (b, window, in-window) ranks when the bucket arrays stay
small next to the voxels (cap = 4 V + 65536 buckets), and fall back to a radix sort on the composite key
otherwise. The DSVT sets first try a bitmap path (one counting sort by window, then each window ordered
through occupancy bitmaps of its cells), which needs unique voxels and windows of at most 4096 cells.
The inputs below are built to land on either side of those limits, with adversarial key ranges (sparse
and huge batch indices, windows as large as the grid, duplicate voxels), and every path must match.
``PC3D_SETS_PATH=bitmap|counting|radix`` runs one sets path alone and raises where it does not apply, so
the tests below know which path produced each result.
"""
import pytest
import torch

from pc3d.ops import flat_window_partition, rotated_set_partition
from tests.reference.partition_ref import assert_flat_equals_ref, assert_sets_equal_ref, random_coords


_flat_same = assert_flat_equals_ref
_sets_same = assert_sets_equal_ref


def _rebatch(coords, batch_ids):
    """coords with sample b renamed to batch_ids[b] (sparse, possibly huge batch indices)."""
    c = coords.clone()
    c[:, 0] = torch.tensor(batch_ids, dtype=torch.int32)[coords[:, 0].long()]
    return c


@pytest.mark.parametrize("batch_ids", [
    [0, 3, 17],          # sparse indices, (b_max + 1) * windows under the cap: counting path
    [0, 5000, 2**31 - 1],  # huge indices: (b_max + 1) * windows far over the cap -> radix path
])
@pytest.mark.parametrize("axis, shift", [("x", False), ("x", True), ("y", False), ("y", True)])
def test_flat_sparse_and_huge_batch_indices(batch_ids, axis, shift):
    gen = torch.Generator().manual_seed(21)
    coords = _rebatch(random_coords(gen, [400, 0, 250][:len(batch_ids)], (1, 90, 70)), batch_ids)
    _flat_same(coords, (1, 90, 70), (13, 11), 50, axis, shift)


@pytest.mark.parametrize("window, V", [
    ((300, 300), 50),    # window cells (90000) over the cap of 50 voxels -> radix path
    ((300, 300), 9000),  # the same window under the cap of 9000 voxels -> counting path
    ((1, 1), 200),       # one cell per window: 90000 windows over the cap -> radix path
    ((1, 1), 9000),      # one cell per window under the cap -> counting path
])
def test_flat_window_extremes_on_both_sides_of_the_cap(window, V):
    gen = torch.Generator().manual_seed(22)
    coords = random_coords(gen, [V], (1, 300, 300))
    for axis in ("x", "y"):
        _flat_same(coords, (1, 300, 300), window, 37, axis, True)


def test_flat_duplicate_cells_keep_input_order():
    # every voxel repeated 3 times (also across z): equal keys must keep their input order (stable)
    gen = torch.Generator().manual_seed(23)
    base = random_coords(gen, [300, 200], (2, 40, 40))
    coords = torch.cat([base, base, base])[torch.randperm(3 * base.shape[0], generator=gen)]
    _flat_same(coords, (2, 40, 40), (7, 5), 16, "y", True)


@pytest.mark.parametrize("batch_ids", [[0, 2, 9], [1, 7000, 2**31 - 1]])
def test_sets_sparse_and_huge_batch_indices(batch_ids):
    gen = torch.Generator().manual_seed(24)
    coords = _rebatch(random_coords(gen, [500, 30, 700], (2, 60, 50)), batch_ids)
    _sets_same(coords, (2, 60, 50), (2, 12, 12), 36, (1, 6, 6))
    _sets_same(coords, (2, 60, 50), (1, 5, 7), 4, (0, 0, 0))


@pytest.mark.parametrize("window, V", [
    ((1, 256, 257), 40),   # 65792 cells per window: over the 16-bit in-window key -> radix path
    ((1, 255, 256), 40),   # 65280 cells per window -> counting path (over the bitmap path's 4096)
    ((1, 1, 1), 100),      # 181202 windows per sample, over the cap of 100 voxels -> radix path
    ((1, 1, 1), 30000),    # the same under the cap of 30000 voxels -> bitmap path
])
def test_sets_window_extremes_on_both_sides_of_the_cap(window, V):
    gen = torch.Generator().manual_seed(25)
    coords = random_coords(gen, [V], (1, 300, 300))
    _sets_same(coords, (1, 300, 300), window, 36, (0, window[1] // 2, window[2] // 2))


def test_sets_duplicate_voxels_and_full_windows():
    gen = torch.Generator().manual_seed(26)
    base = random_coords(gen, [144, 60], (1, 12, 12))  # sample 0 fills its only window: 4 full sets
    coords = torch.cat([base, base])[torch.randperm(2 * base.shape[0], generator=gen)]
    for tau in (1, 36, 37, 288, 500):
        _sets_same(coords, (1, 12, 12), (1, 12, 12), tau, (0, 0, 0))


def test_cached_argument_parsing_still_validates_types():
    # The faces memoise their argument parsing; a value equal to an accepted one but of another type
    # (True == 1) must still be rejected after the accepted one was cached.
    c = torch.tensor([[0, 0, 1, 1]], dtype=torch.int32)
    flat_window_partition(c, (1, 8, 8), (4, 4), 1, shift=False)
    with pytest.raises(ValueError, match="group_size must be a positive int"):
        flat_window_partition(c, (1, 8, 8), (4, 4), True, shift=False)
    with pytest.raises(ValueError, match="shift must be a bool"):
        flat_window_partition(c, (1, 8, 8), (4, 4), 1, shift=0)
    flat_window_partition(c, (1, 8, 8), (1, 4), 1)
    with pytest.raises(ValueError, match="window_shape must be an int or a sequence of 2 ints"):
        flat_window_partition(c, (1, 8, 8), (True, 4), 1)
    rotated_set_partition(c, (1, 8, 8), (1, 4, 4), 3, shift=(0, 1, 1))
    with pytest.raises(ValueError, match="shift must be an int or a sequence of 3 ints"):
        rotated_set_partition(c, (1, 8, 8), (1, 4, 4), 3, shift=(0, True, 1))
    with pytest.raises(ValueError, match="sparse_shape must be an int or a sequence of 3 ints"):
        rotated_set_partition(c, [1, 8.0, 8], (1, 4, 4), 3)


SETS_PATHS = ["bitmap", "counting", "radix"]


@pytest.mark.parametrize("path", SETS_PATHS)
def test_sets_every_path_on_random_batches(path, monkeypatch):
    monkeypatch.setenv("PC3D_SETS_PATH", path)
    gen = torch.Generator().manual_seed(27)
    coords = _rebatch(random_coords(gen, [600, 0, 1, 450], (4, 50, 60)), [0, 1, 2, 5])
    for window, tau, shift in [((1, 12, 12), 36, (0, 6, 6)), ((2, 12, 12), 36, (1, 6, 6)), ((4, 5, 7), 4, (0, 0, 0)),
                               ((4, 16, 64), 500, (2, 8, 32)), ((1, 2, 1), 1, (0, 1, 0))]:  # 4096 cells: 64 words
        _sets_same(coords, (4, 50, 60), window, tau, shift)


def test_sets_paths_that_do_not_apply_raise_when_forced(monkeypatch):
    gen = torch.Generator().manual_seed(28)
    base = random_coords(gen, [200], (1, 30, 30))
    dup = torch.cat([base, base[:7]])
    monkeypatch.setenv("PC3D_SETS_PATH", "bitmap")
    with pytest.raises(RuntimeError, match="bitmap path does not apply"):
        rotated_set_partition(dup, (1, 30, 30), (1, 12, 12), 36)  # duplicate cells: not one voxel per cell
    with pytest.raises(RuntimeError, match="bitmap path does not apply"):
        rotated_set_partition(base, (1, 30, 30), (1, 30, 140), 36)  # 4200 cells per window, over 4096
    monkeypatch.setenv("PC3D_SETS_PATH", "counting")
    with pytest.raises(RuntimeError, match="counting path does not apply"):
        # one window per cell: 2 x 301 x 301 windows, over the cap of 4 x 10 + 65536 buckets for 10 voxels
        rotated_set_partition(random_coords(gen, [10], (1, 300, 300)), (1, 300, 300), (1, 1, 1), 36)
    monkeypatch.setenv("PC3D_SETS_PATH", "fastest")
    with pytest.raises(ValueError, match="PC3D_SETS_PATH must be bitmap, counting or radix"):
        rotated_set_partition(base, (1, 30, 30), (1, 12, 12), 36)


@pytest.mark.parametrize("path", ["counting", "radix", ""])
def test_sets_duplicates_on_the_paths_that_take_them(path, monkeypatch):
    # The bitmap path declines duplicate cells; the default ("") then falls back to the counting path.
    monkeypatch.setenv("PC3D_SETS_PATH", path)
    gen = torch.Generator().manual_seed(29)
    base = random_coords(gen, [300, 120], (2, 30, 30))
    coords = torch.cat([base, base[:50], base[:5]])[torch.randperm(base.shape[0] + 55, generator=gen)]
    for tau in (1, 36, 37):
        _sets_same(coords, (2, 30, 30), (2, 12, 12), tau, (1, 6, 6))


@pytest.mark.parametrize("tau", [37, 8191, 9001])
def test_sets_windows_near_and_over_8192_slots(tau, monkeypatch):
    # Windows of up to 8191 slots (S * tau) take each slot's rank from a fixed-point reciprocal, larger
    # ones step a remainder. One 100 x 100 window per sample (counting path: over 4096 cells) holding 9000
    # voxels (tau 37: 9028 slots, 8191: 16382) and 8000 voxels (tau 8191: 8191 slots, the reciprocal's
    # largest case; 9001: one set with more slots than voxels).
    monkeypatch.setenv("PC3D_SETS_PATH", "counting")
    gen = torch.Generator().manual_seed(30)
    coords = random_coords(gen, [9000, 8000], (1, 100, 100))
    _sets_same(coords, (1, 100, 100), (1, 100, 100), tau, (0, 0, 0))
