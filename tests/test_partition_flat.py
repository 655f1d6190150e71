"""flat_window_partition (FlatFormer) against the plain-PyTorch reference and DESIGN.md's literal key."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from pc3d.ops import flat_window_partition
from tests.reference.partition_ref import flat_key, flat_window_ref, random_coords


def assert_same(coords, shape, window, G, axis, shift):
    out = flat_window_partition(coords, shape, window, G, axis=axis, shift=shift)
    ref = flat_window_ref(coords, shape, window, G, axis=axis, shift=shift)
    for name, a, b in zip(out._fields, out, ref):
        assert a.dtype == b.dtype, name
        assert torch.equal(a, b), name
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("shift", [False, True])
def test_random_batches_match_reference(seed, axis, shift):
    gen = torch.Generator().manual_seed(seed)
    nb = int(torch.randint(1, 5, (1,), generator=gen))
    sizes = torch.randint(1, 3000, (nb,), generator=gen).tolist()
    shape = (1, int(torch.randint(20, 200, (1,), generator=gen)), int(torch.randint(20, 200, (1,), generator=gen)))
    sizes = [min(s, shape[1] * shape[2]) for s in sizes]
    window = tuple(torch.randint(2, 15, (2,), generator=gen).tolist())
    G = int(torch.randint(1, 200, (1,), generator=gen))
    assert_same(random_coords(gen, sizes, shape), shape, window, G, axis, shift)


def test_large_batch_100k_matches_reference():
    gen = torch.Generator().manual_seed(7)
    coords = random_coords(gen, [100_000, 20_000], (1, 468, 468))
    assert_same(coords, (1, 468, 468), (13, 13), 144, "x", True)
    assert_same(coords, (1, 468, 468), (13, 13), 144, "y", False)


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("shift", [False, True])
def test_order_equals_literal_design_key(axis, shift):
    # With a Waymo-sized grid the papers' b*Sx*Sy*10 term separates samples, so the groups' order
    # must be exactly a stable argsort of DESIGN.md's literal key.
    gen = torch.Generator().manual_seed(3)
    shape = (1, 468, 468)
    coords = random_coords(gen, [5000, 3000, 4000], shape)
    out = flat_window_partition(coords, shape, (13, 13), 144, axis=axis, shift=shift)
    order = out.indices.flatten()[~out.padding_mask.flatten()]
    literal = torch.sort(flat_key(coords, shape, (13, 13), axis, shift, with_batch_term=True), stable=True).indices
    assert torch.equal(order, literal)


def test_snake_order_on_a_tiny_grid():
    # 4x4 grid, 2x2 windows, one voxel per cell: x-major snake visits windows (0,0),(1,0) then (1,1),(0,1).
    ys, xs = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    coords = torch.stack([torch.zeros(16), torch.zeros(16), ys.flatten(), xs.flatten()], 1).int()
    out = flat_window_partition(coords, (4, 4), 2, 16, axis="x")
    xy = coords[out.indices[0]][:, [3, 2]].tolist()
    assert xy[:4] == [[0, 0], [0, 1], [1, 1], [1, 0]]  # window (0,0): snake inside the window
    assert xy[4:8] == [[2, 0], [2, 1], [3, 1], [3, 0]]  # window (1,0)
    assert {tuple(p) for p in xy[8:12]} == {(2, 2), (2, 3), (3, 2), (3, 3)}  # window (1,1) next (snake)
    assert_same(coords, (4, 4), (2, 2), 16, "x", False)


def test_one_voxel():
    coords = torch.tensor([[0, 0, 3, 4]], dtype=torch.int32)
    out = assert_same(coords, (1, 8, 8), (4, 4), 5, "x", False)
    assert out.indices.tolist() == [[0] * 5]
    assert out.padding_mask.tolist() == [[False, True, True, True, True]]


def test_empty_input_and_empty_sample():
    out = flat_window_partition(torch.zeros(0, 4, dtype=torch.int32), (1, 8, 8), 4, 3)
    assert out.indices.shape == (0, 3) and out.inverse.shape == (0,)
    gen = torch.Generator().manual_seed(1)
    c = random_coords(gen, [10, 0, 7, 0], (1, 30, 30))  # samples 1 and 3 empty
    out = assert_same(c, (1, 30, 30), (5, 5), 4, "y", True)
    assert out.group_batch.tolist() == [0, 0, 0, 2, 2]


def test_degenerate_layouts():
    gen = torch.Generator().manual_seed(2)
    # every voxel in one window
    assert_same(random_coords(gen, [50, 60], (1, 40, 40), dense=(0, 0, 0, 1, 13, 13)), (1, 40, 40), (13, 13), 16, "x", False)
    # windows on the grid edge: grid not a multiple of the window, voxels packed at the far border
    edge = random_coords(gen, [200, 80], (1, 50, 47), dense=(0, 40, 37, 1, 50, 47))
    for shift in (False, True):  # shifted windows crossing the border
        for axis in ("x", "y"):
            assert_same(edge, (1, 50, 47), (13, 13), 36, axis, shift)
    # 3D voxels sharing (x, y): ties keep input order (stable)
    assert_same(random_coords(gen, [300, 100], (4, 10, 10)), (4, 10, 10), (3, 3), 7, "x", True)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 60), min_size=1, max_size=4), G=st.integers(1, 40),
       w=st.tuples(st.integers(1, 9), st.integers(1, 9)), axis=st.sampled_from("xy"), shift=st.booleans(),
       seed=st.integers(0, 2**16))
def test_properties(sizes, G, w, axis, shift, seed):
    shape = (2, 11, 13)
    coords = random_coords(torch.Generator().manual_seed(seed), sizes, shape)
    out = flat_window_partition(coords, shape, w, G, axis=axis, shift=shift)
    V = coords.shape[0]
    flat, pad = out.indices.flatten(), out.padding_mask.flatten()
    # every voxel exactly once as a real slot, and the inverse points at it
    assert torch.equal(torch.sort(flat[~pad]).values, torch.arange(V))
    assert torch.equal(flat[out.inverse], torch.arange(V)) and not pad[out.inverse].any()
    # groups are exactly G, one sample each, ceil(n_b / G) groups per sample
    assert out.indices.shape[1] == G
    assert torch.equal(coords[out.indices, 0].long(), out.group_batch[:, None].expand(-1, G))
    counts = torch.bincount(coords[:, 0].long(), minlength=len(sizes))
    assert torch.equal(torch.bincount(out.group_batch, minlength=len(sizes)), -(-counts // G))
    # the mask marks exactly the repeats: real slots come first, padded slot j repeats slot j % r
    real = (~out.padding_mask).sum(1, keepdim=True)
    assert torch.equal(out.padding_mask, torch.arange(G) >= real)
    assert torch.equal(out.indices, out.indices.gather(1, torch.arange(G) % real))


@pytest.mark.parametrize("bad, match", [
    (dict(coords=torch.zeros(3, 3, dtype=torch.int32)), r"coords must have shape \(V, 4\).*\(3, 3\)"),
    (dict(coords=torch.zeros(3, 4, dtype=torch.int64)), "coords must be int32"),
    (dict(coords=torch.tensor([[0, 0, 1, 1], [0, 0, 0, 8]], dtype=torch.int32)),
     r"coords row 1 \(b, z, y, x\) = \(0, 0, 0, 8\) is outside sparse_shape \(D, H, W\) = \(1, 8, 8\)"),
    (dict(coords=torch.tensor([[0, 1, 0, 0]], dtype=torch.int32)), r"coords row 0 .* = \(0, 1, 0, 0\) is outside"),
    (dict(coords=torch.tensor([[-1, 0, 0, 0]], dtype=torch.int32)), "negative batch index"),
    (dict(group_size=0), "group_size must be a positive int, got 0"),
    (dict(axis="z"), "axis must be 'x' or 'y'"),
    (dict(window_shape=(0, 4)), r"window_shape must be positive, got \(0, 4\)"),
    (dict(window_shape=(4, 4, 4)), "window_shape must be an int or a sequence of 2 ints"),
    (dict(sparse_shape=(1, -8, 8)), "sparse_shape must be positive"),
    (dict(shift=1), "shift must be a bool"),
    (dict(sparse_shape=(1, 2**30, 2**30), window_shape=(1, 1)), "overflows the 64-bit sort key"),
])
def test_bad_input(bad, match):
    args = dict(coords=torch.tensor([[0, 0, 1, 1]], dtype=torch.int32), sparse_shape=(1, 8, 8),
                window_shape=(4, 4), group_size=4, axis="x", shift=False)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        flat_window_partition(**args)


def test_opcheck():
    coords = random_coords(torch.Generator().manual_seed(0), [20, 9], (1, 16, 16))
    torch.library.opcheck(torch.ops.pc3d.flat_window_partition.default, (coords, [16, 16, 1], [5, 5], 8, 0, True))


def test_multithreaded_path_above_serial_threshold():
    # >= 262144 voxels: the kernels split the key pass, the radix sort and the group fill over threads.
    gen = torch.Generator().manual_seed(11)
    coords = random_coords(gen, [200_000, 100_000], (2, 468, 468))
    torch.set_num_threads(2)
    assert_same(coords, (2, 468, 468), (13, 13), 144, "y", True)


@settings(max_examples=60, deadline=None)
@given(S=st.tuples(st.integers(1, 60), st.integers(1, 60)), w=st.tuples(st.integers(1, 15), st.integers(1, 15)),
       axis=st.sampled_from("xy"), shift=st.booleans())
def test_key_bound_used_by_the_cuda_kernel(S, w, axis, shift):
    # The CUDA kernel sorts b * K + key with K = n1 (ceil(Sy/wy) + 2) n2 m2 (key_x), m1 (ceil(Sx/wx) + 2) n2 m2
    # (key_y); every key of every cell must lie in [0, K) or samples would interleave.
    (Sy, Sx), (wy, wx) = S, w
    ys, xs = torch.meshgrid(torch.arange(Sy), torch.arange(Sx), indexing="ij")
    coords = torch.stack([torch.zeros_like(xs), torch.zeros_like(xs), ys, xs], -1).view(-1, 4).int()
    key = flat_key(coords, (1, Sy, Sx), (wy, wx), axis, shift)
    cx, cy = -(-Sx // wx), -(-Sy // wy)
    K = (2 * (cx + 1) * (cy + 2) if axis == "x" else 2 * (cy + 1) * (cx + 2)) * 4 * wx * wy
    assert int(key.min()) >= 0 and int(key.max()) < K
