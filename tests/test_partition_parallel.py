"""Chunked (parallel) counting and bitmap paths of the CPU partition kernels against the plain-PyTorch
references.

Large inputs (>= 2 x 4096 voxels with >= 2 threads) split every counting pass into contiguous chunks,
one per thread: per-chunk histograms, a prefix over (bucket, chunk), chunk-wise stable scatters. The
result must equal the serial one bit for bit. ``PC3D_PARTITION_CHUNKS=k`` forces k chunks (read per
call), so the chunked code runs here on small, adversarial inputs with chunk counts that do not divide
the voxel count, more chunks than threads, and chunk edges inside windows, samples and padded groups.
"""
import pytest
import torch

from pc3d.ops import flat_window_partition, rotated_set_partition
from tests.reference.partition_ref import assert_flat_equals_ref, assert_sets_equal_ref, random_coords

CHUNKS = [2, 3, 5, 8]


_flat_same = assert_flat_equals_ref
_sets_same = assert_sets_equal_ref


@pytest.fixture(params=CHUNKS)
def chunks(request, monkeypatch):
    monkeypatch.setenv("PC3D_PARTITION_CHUNKS", str(request.param))
    return request.param


@pytest.mark.parametrize("axis, shift", [("x", False), ("x", True), ("y", False), ("y", True)])
def test_flat_random_batches(chunks, axis, shift):
    gen = torch.Generator().manual_seed(100 + chunks)
    coords = random_coords(gen, [700, 0, 333, 1, 900], (2, 80, 70))  # empty sample, a 1-voxel sample
    for G in (1, 7, 144):
        _flat_same(coords, (2, 80, 70), (13, 11), G, axis, shift)


def test_flat_adversarial_layouts(chunks):
    gen = torch.Generator().manual_seed(200 + chunks)
    # every voxel of every sample in one window, plus duplicates (equal keys keep input order)
    one = random_coords(gen, [150, 90], (3, 40, 40), dense=(0, 20, 20, 3, 33, 33))
    one = torch.cat([one, one[:100]])[torch.randperm(one.shape[0] + 100, generator=gen)]
    for axis in ("x", "y"):
        _flat_same(one, (3, 40, 40), (13, 13), 16, axis, False)
    # many empty windows: a few voxels scattered over a large grid, several samples
    sparse = random_coords(gen, [40, 3, 25], (1, 500, 450))
    _flat_same(sparse, (1, 500, 450), (13, 13), 144, "y", True)
    # fewer voxels than chunks, and than G
    for V in (1, 2, 5):
        _flat_same(random_coords(gen, [V], (1, 30, 30)), (1, 30, 30), (5, 5), 9, "x", True)


@pytest.mark.parametrize("path", ["bitmap", "counting"])
def test_sets_random_batches(chunks, path, monkeypatch):
    monkeypatch.setenv("PC3D_SETS_PATH", path)  # each chunked sets path alone (raises if it declines)
    gen = torch.Generator().manual_seed(300 + chunks)
    coords = random_coords(gen, [800, 0, 410, 1, 650], (2, 70, 60))
    for tau in (1, 36, 50):
        _sets_same(coords, (2, 70, 60), (2, 12, 12), tau, (1, 6, 6))
        _sets_same(coords, (2, 70, 60), (1, 5, 7), tau, (0, 0, 0))


def test_sets_adversarial_layouts(chunks):
    gen = torch.Generator().manual_seed(400 + chunks)
    # one window holding everything (full sets and a padded last set), duplicated voxels
    one = random_coords(gen, [144, 100], (1, 12, 12))
    one = torch.cat([one, one])[torch.randperm(2 * one.shape[0], generator=gen)]
    for tau in (36, 37, 500):
        _sets_same(one, (1, 12, 12), (1, 12, 12), tau, (0, 0, 0))
    # many empty windows on a large grid
    _sets_same(random_coords(gen, [30, 2, 17], (1, 480, 470)), (1, 480, 470), (1, 12, 12), 36, (0, 6, 6))
    for V in (1, 2, 5):
        _sets_same(random_coords(gen, [V], (1, 30, 30)), (1, 30, 30), (1, 4, 4), 3, (0, 2, 2))


def test_bad_voxel_in_a_later_chunk_is_reported(chunks):
    c = torch.zeros(64, 4, dtype=torch.int32)
    c[:, 3] = torch.arange(64) % 8
    c[50, 2] = 8  # outside H = 8: the first bad row, in a later chunk than the first for every count here
    with pytest.raises(ValueError, match=r"coords row 50 \(b, z, y, x\) = \(0, 0, 8, 2\) is outside"):
        flat_window_partition(c, (1, 8, 8), (4, 4), 5)
    with pytest.raises(ValueError, match=r"coords row 50 \(b, z, y, x\) = \(0, 0, 8, 2\) is outside"):
        rotated_set_partition(c, (1, 8, 8), (1, 4, 4), 5)


def test_default_threshold_takes_the_parallel_path_on_large_inputs(monkeypatch):
    # No override: 40k voxels on 2 threads are above the threshold (2 chunks of >= 4096 voxels).
    monkeypatch.delenv("PC3D_PARTITION_CHUNKS", raising=False)
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = torch.Generator().manual_seed(500)
        coords = random_coords(gen, [25000, 15000], (1, 468, 468))
        _flat_same(coords, (1, 468, 468), (13, 13), 144, "x", True)
        _sets_same(coords, (1, 468, 468), (1, 12, 12), 36, (0, 6, 6))
        monkeypatch.setenv("PC3D_SETS_PATH", "counting")
        _sets_same(coords, (1, 468, 468), (1, 12, 12), 36, (0, 6, 6))
    finally:
        torch.set_num_threads(prev)
