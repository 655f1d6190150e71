"""rotated_set_partition (DSVT) against the plain-PyTorch reference, properties and bad input."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from pc3d.ops import rotated_set_partition
from tests.reference.partition_ref import random_coords, rotated_set_ref


def assert_same(coords, shape, window, tau, shift):
    out = rotated_set_partition(coords, shape, window, tau, shift=shift)
    idx, pad, set_window = rotated_set_ref(coords, shape, window, tau, shift)
    assert torch.equal(out.indices, idx)
    assert torch.equal(out.padding_mask, pad)
    assert torch.equal(out.set_window, set_window)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_random_batches_match_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    nb = int(torch.randint(1, 5, (1,), generator=gen))
    D = int(torch.randint(1, 4, (1,), generator=gen))
    shape = (D, int(torch.randint(10, 150, (1,), generator=gen)), int(torch.randint(10, 150, (1,), generator=gen)))
    sizes = [min(int(s), D * shape[1] * shape[2]) for s in torch.randint(1, 4000, (nb,), generator=gen)]
    window = (int(torch.randint(1, D + 1, (1,), generator=gen)),) + tuple(torch.randint(1, 16, (2,), generator=gen).tolist())
    shift = tuple(int(torch.randint(0, w + 1, (1,), generator=gen)) for w in window)
    tau = int(torch.randint(1, 50, (1,), generator=gen))
    assert_same(random_coords(gen, sizes, shape), shape, window, tau, shift)


def test_large_batch_100k_matches_reference():
    gen = torch.Generator().manual_seed(9)
    coords = random_coords(gen, [100_000, 15_000], (1, 468, 468))
    assert_same(coords, (1, 468, 468), (1, 12, 12), 36, (0, 0, 0))
    assert_same(coords, (1, 468, 468), (1, 24, 24), 36, (0, 6, 6))  # DSVT-P config 1


def test_shift_true_means_half_window_and_no_z_shift_for_full_height_windows():
    gen = torch.Generator().manual_seed(4)
    coords = random_coords(gen, [500, 300], (1, 60, 60))
    a = rotated_set_partition(coords, (1, 60, 60), (12, 12), 36, shift=True)
    b = rotated_set_partition(coords, (1, 60, 60), (1, 12, 12), 36, shift=(0, 6, 6))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert_same(coords, (1, 60, 60), (1, 12, 12), 36, (0, 6, 6))


def test_slot_formula_on_one_window():
    # 37 voxels in one 12x12 window with tau = 36: S = 2 sets, slot j of set k = rank floor((36k + j) * 37 / 72).
    ys, xs = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    keep = torch.arange(144)[:37]
    coords = torch.stack([torch.zeros(144), torch.zeros(144), ys.flatten(), xs.flatten()], 1).int()[keep]
    out = rotated_set_partition(coords, (1, 12, 12), (12, 12), 36)
    ranks = [[(36 * k + j) * 37 // 72 for j in range(36)] for k in range(2)]
    # order 0 (y-major) of a row-major grid is the input order, so rank r is voxel r
    assert out.indices[0].tolist() == ranks
    assert out.padding_mask[0].sum().item() == 72 - 37


def test_one_voxel_empty_sample_and_degenerate_layouts():
    one = torch.tensor([[0, 0, 5, 5]], dtype=torch.int32)
    out = assert_same(one, (1, 12, 12), (1, 12, 12), 4, (0, 0, 0))
    assert out.indices.tolist() == [[[0] * 4], [[0] * 4]] and out.padding_mask[:, 0, 1:].all()
    gen = torch.Generator().manual_seed(5)
    c = random_coords(gen, [0, 40, 0, 25], (2, 30, 30))  # empty samples 0 and 2
    out = assert_same(c, (2, 30, 30), (2, 12, 12), 8, (1, 6, 6))
    assert set(out.set_batch.tolist()) == {1, 3}
    # every voxel in one window (144 voxels, tau 36 -> 4 full sets, no padding)
    full = random_coords(gen, [144], (1, 40, 40), dense=(0, 12, 12, 1, 24, 24))
    out = assert_same(full, (1, 40, 40), (1, 12, 12), 36, (0, 0, 0))
    assert out.indices.shape == (2, 4, 36) and not out.padding_mask.any()
    # windows on the far grid edge, shifted across the border
    edge = random_coords(gen, [300, 90], (1, 50, 47), dense=(0, 40, 37, 1, 50, 47))
    for shift in ((0, 0, 0), (0, 6, 6), (0, 12, 12)):
        assert_same(edge, (1, 50, 47), (1, 12, 12), 36, shift)
    empty = rotated_set_partition(torch.zeros(0, 4, dtype=torch.int32), (1, 8, 8), 4, 5)
    assert empty.indices.shape == (2, 0, 5) and empty.set_window.shape == (0,)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 80), min_size=1, max_size=4), tau=st.integers(1, 20),
       w=st.tuples(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7)), seed=st.integers(0, 2**16),
       shift=st.booleans())
def test_properties(sizes, tau, w, seed, shift):
    shape = (2, 9, 11)
    coords = random_coords(torch.Generator().manual_seed(seed), sizes, shape)
    out = rotated_set_partition(coords, shape, w, tau, shift=shift)
    V = coords.shape[0]
    for o in range(2):
        idx, pad = out.indices[o], out.padding_mask[o]
        # every voxel exactly once unmasked per order
        assert torch.equal(torch.sort(idx[~pad]).values, torch.arange(V))
        # the mask marks exactly the repeats of the previous slot
        rep = torch.zeros_like(pad)
        rep[:, 1:] = idx[:, 1:] == idx[:, :-1]
        assert torch.equal(pad, rep)
        # no set mixes samples (nor windows)
        assert torch.equal(coords[idx, 0].long(), out.set_batch[:, None].expand(-1, tau))
    # S = ceil(n / tau) sets per window, and both orders share the sets' windows
    win, n = torch.unique_consecutive(out.set_window, return_counts=True)
    per_win = torch.bincount(torch.searchsorted(win, out.set_window), minlength=win.numel())
    real = (~out.padding_mask[0]).sum(1)
    n_vox = torch.zeros(win.numel(), dtype=torch.int64).index_add_(0, torch.searchsorted(win, out.set_window), real)
    assert torch.equal(per_win, -(-n_vox // tau))


@pytest.mark.parametrize("bad, match", [
    (dict(coords=torch.zeros(2, 4, dtype=torch.float32)), "coords must be int32"),
    (dict(coords=torch.zeros(4, dtype=torch.int32)), r"coords must have shape \(V, 4\)"),
    (dict(coords=torch.tensor([[0, 1, 0, 0]], dtype=torch.int32)), r"coords row 0 \(b, z, y, x\) = \(0, 1, 0, 0\) is outside sparse_shape \(D, H, W\) = \(1, 16, 16\)"),
    (dict(set_size=0), "set_size must be a positive int"),
    (dict(shift=(0, 13, 0)), r"shift \(dz, dy, dx\) = \(0, 13, 0\) must not exceed window_shape \(1, 12, 12\)"),
    (dict(shift=(6, 6, 0)), "must not exceed window_shape"),
    (dict(shift=(0, -1, 0)), "shift must be non-negative"),
    (dict(window_shape=(1, 0, 12)), "window_shape must be positive"),
    (dict(window_shape=(1, 1, 12, 12)), "window_shape must be an int or a sequence of 3 ints"),
])
def test_bad_input(bad, match):
    args = dict(coords=torch.tensor([[0, 0, 1, 1]], dtype=torch.int32), sparse_shape=(1, 16, 16),
                window_shape=(1, 12, 12), set_size=36, shift=(0, 0, 0))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        rotated_set_partition(**args)


def test_opcheck():
    coords = random_coords(torch.Generator().manual_seed(0), [30, 12], (2, 16, 16))
    torch.library.opcheck(torch.ops.pc3d.rotated_set_partition.default, (coords, [16, 16, 2], [5, 5, 1], [2, 2, 0], 6))


def test_multithreaded_path_above_serial_threshold():
    # >= 262144 voxels: the kernels split the key pass, the radix sort and the set fill over threads.
    gen = torch.Generator().manual_seed(12)
    coords = random_coords(gen, [150_000, 150_000], (2, 468, 468))
    torch.set_num_threads(2)
    assert_same(coords, (2, 468, 468), (2, 24, 24), 36, (0, 6, 6))
