"""flat_window_partition (FlatFormer) against the plain-PyTorch reference and the official literal key, in both
last-group modes ('previous': the official rule, 'repeat')."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from pc3d.ops import flat_window_partition
from tests.reference.partition_ref import flat_key, flat_window_ref, random_coords


MODES = ("previous", "repeat")


def assert_same(coords, shape, window, G, axis, shift, last_group="previous"):
    out = flat_window_partition(coords, shape, window, G, axis=axis, shift=shift, last_group=last_group)
    ref = flat_window_ref(coords, shape, window, G, axis=axis, shift=shift, last_group=last_group)
    for name, a, b in zip(out._fields, out, ref):
        assert a.dtype == b.dtype, name
        assert torch.equal(a, b), name
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("last_group", MODES)
def test_random_batches_match_reference(seed, axis, shift, last_group):
    gen = torch.Generator().manual_seed(seed)
    nb = int(torch.randint(1, 5, (1,), generator=gen))
    sizes = torch.randint(1, 3000, (nb,), generator=gen).tolist()
    shape = (1, int(torch.randint(20, 200, (1,), generator=gen)), int(torch.randint(20, 200, (1,), generator=gen)))
    sizes = [min(s, shape[1] * shape[2]) for s in sizes]
    window = tuple(torch.randint(2, 15, (2,), generator=gen).tolist())
    G = int(torch.randint(1, 200, (1,), generator=gen))
    assert_same(random_coords(gen, sizes, shape), shape, window, G, axis, shift, last_group)


def test_large_batch_100k_matches_reference():
    gen = torch.Generator().manual_seed(7)
    coords = random_coords(gen, [100_000, 20_000], (1, 468, 468))
    assert_same(coords, (1, 468, 468), (13, 13), 144, "x", True)
    assert_same(coords, (1, 468, 468), (13, 13), 144, "y", False, "repeat")


def official_flat2win_groups(coords, shape, window, G, axis, shift):
    """The official FlatFormer's groups, computed as its code does (mmdet3d FlattenedWindowMapping): a sort of
    the literal key, the padded layout ``flat2win`` whose short last group copies the G - r slots before it,
    then ``order[flat2win].view(-1, G)``. Valid where the official code is: every sample of >= G voxels."""
    order = torch.sort(flat_key(coords, shape, window, axis, shift, with_batch_term=True)).indices
    counts = torch.bincount(coords[:, 0].long())
    start = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    counts_p = (counts + G - 1) // G * G
    start_p = torch.cat([torch.zeros(1, dtype=torch.long), counts_p.cumsum(0)])
    flat2win = torch.arange(int(start_p[-1]))
    for i in range(counts.numel()):
        end_p, r = int(start_p[i + 1]), int(counts[i]) % G
        if r:
            flat2win[end_p - G + r:end_p] = flat2win[end_p - 2 * G + r:end_p - G].clone()
        flat2win[start_p[i]:end_p] -= start_p[i] - start[i]
    return order[flat2win].view(-1, G)


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("shift", [False, True])
def test_previous_mode_is_the_official_flat2win(axis, shift):
    # Samples whose voxel counts leave every remainder class: 0, 1, G - 1 and in between.
    G = 144
    gen = torch.Generator().manual_seed(5)
    coords = random_coords(gen, [3 * G, 2 * G + 1, 3 * G - 1, 5000, 7 * G + 77], (1, 468, 468))
    out = flat_window_partition(coords, (1, 468, 468), (13, 13), G, axis=axis, shift=shift)
    assert torch.equal(out.indices, official_flat2win_groups(coords, (1, 468, 468), (13, 13), G, axis, shift))
    assert not out.padding_mask.any()


@pytest.mark.parametrize("last_group", MODES)
def test_last_group_fill_adversarial(last_group):
    # One sample per case: n < G (one group: always the masked repeat), n = G, G + 1 (one real voxel in the
    # last group: G - 1 fill slots), 2G - 1 (one fill slot), 2G; and samples that are empty in between.
    G = 8
    sizes = [3, 0, G, G + 1, 0, 2 * G - 1, 2 * G, 1]
    coords = random_coords(torch.Generator().manual_seed(9), sizes, (1, 12, 12))
    out = assert_same(coords, (1, 12, 12), (3, 3), G, "x", False, last_group)
    groups_of = torch.bincount(out.group_batch, minlength=len(sizes))
    assert groups_of.tolist() == [-(-n // G) for n in sizes]
    first = torch.cumsum(groups_of, 0) - groups_of
    for b, n in enumerate(sizes):
        if n == 0 or n % G == 0:
            continue
        last, r = int(first[b] + groups_of[b] - 1), n % G
        row, mask = out.indices[last], out.padding_mask[last]
        if last_group == "previous" and n > G:
            assert torch.equal(row[r:], out.indices[last - 1, r:]) and not mask.any()
        else:
            assert torch.equal(row[r:], row[torch.arange(r, G) % r]) and mask[r:].all() and not mask[:r].any()


@pytest.mark.parametrize("last_group", MODES)
@pytest.mark.parametrize("batch_ids", [[0, 1, 2], [0, 9999, 2**31 - 1]])  # counting path, radix path
def test_both_kernel_paths_fill_the_last_group_alike(last_group, batch_ids):
    # Huge batch indices make the bucket arrays too large for the counting passes: the radix path runs.
    coords = random_coords(torch.Generator().manual_seed(12), [130, 7, 61], (1, 40, 40))
    coords[:, 0] = torch.tensor(batch_ids, dtype=torch.int32)[coords[:, 0].long()]
    for axis, shift in (("x", True), ("y", False)):
        assert_same(coords, (1, 40, 40), (5, 5), 16, axis, shift, last_group)


def test_previous_mode_inverse_points_at_each_voxels_own_group():
    # The fill slots duplicate voxels of the previous group: the inverse must keep pointing at their own slots.
    G = 5
    coords = random_coords(torch.Generator().manual_seed(4), [G + 2], (1, 6, 6))
    out = flat_window_partition(coords, (1, 6, 6), (3, 3), G)
    flat = out.indices.flatten()
    assert torch.equal(flat[out.inverse], torch.arange(G + 2))
    assert out.inverse.max() < G + 2 and sorted(out.inverse.tolist()) == list(range(G + 2))
    assert torch.equal(out.indices[1, 2:], out.indices[0, 2:])


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("shift", [False, True])
def test_order_equals_literal_design_key(axis, shift):
    # With a Waymo-sized grid the papers' b*Sx*Sy*10 term separates samples, so the voxels' own slots, in
    # slot order, must be exactly a stable argsort of the official literal key.
    gen = torch.Generator().manual_seed(3)
    shape = (1, 468, 468)
    coords = random_coords(gen, [5000, 3000, 4000], shape)
    out = flat_window_partition(coords, shape, (13, 13), 144, axis=axis, shift=shift)
    order = out.indices.flatten()[torch.sort(out.inverse).values]
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
       seed=st.integers(0, 2**16), last_group=st.sampled_from(MODES))
def test_properties(sizes, G, w, axis, shift, seed, last_group):
    shape = (2, 11, 13)
    coords = random_coords(torch.Generator().manual_seed(seed), sizes, shape)
    out = flat_window_partition(coords, shape, w, G, axis=axis, shift=shift, last_group=last_group)
    V = coords.shape[0]
    flat, pad = out.indices.flatten(), out.padding_mask.flatten()
    # every voxel exactly once in its own slot, and the inverse points at it
    assert torch.equal(torch.sort(out.inverse).values, torch.unique(out.inverse))
    assert torch.equal(flat[out.inverse], torch.arange(V)) and not pad[out.inverse].any()
    # groups are exactly G, one sample each, ceil(n_b / G) groups per sample
    assert out.indices.shape[1] == G
    assert torch.equal(coords[out.indices, 0].long(), out.group_batch[:, None].expand(-1, G))
    counts = torch.bincount(coords[:, 0].long(), minlength=len(sizes))
    assert torch.equal(torch.bincount(out.group_batch, minlength=len(sizes)), -(-counts // G))
    # own slots come first in each group; the rest fill a short last group
    own = torch.zeros(flat.numel(), dtype=torch.bool)
    own[out.inverse] = True
    own = own.view(-1, G)
    r = own.sum(1, keepdim=True)
    assert torch.equal(own, (torch.arange(G) < r).expand_as(own))
    # only groups that are a sample's first and last (fewer than G voxels) or 'repeat' ones are masked:
    # there the mask marks exactly the repeats and slot j repeats slot j % r
    single = torch.ones_like(out.group_batch, dtype=torch.bool)
    single[1:] = out.group_batch[1:] != out.group_batch[:-1]
    masked = single | (last_group == "repeat")
    assert torch.equal(out.padding_mask, ~own & masked[:, None])
    cyc = out.indices.gather(1, torch.arange(G) % r)
    assert torch.equal(torch.where(masked[:, None], cyc, out.indices), out.indices)
    # 'previous' fills a multi-group sample's last group with the previous group's slots
    prev = ~own & ~masked[:, None]
    assert torch.equal(out.indices[1:][prev[1:]], out.indices[:-1][prev[1:]]) and not prev[:1].any()


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
    (dict(last_group="cycle"), r"last_group must be one of \('previous', 'repeat'\), got 'cycle'"),
    (dict(last_group=0), "last_group must be one of"),
    (dict(sparse_shape=(1, 2**30, 2**30), window_shape=(1, 1)), "overflows the 64-bit sort key"),
])
def test_bad_input(bad, match):
    args = dict(coords=torch.tensor([[0, 0, 1, 1]], dtype=torch.int32), sparse_shape=(1, 8, 8),
                window_shape=(4, 4), group_size=4, axis="x", shift=False)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        flat_window_partition(**args)


@pytest.mark.parametrize("last_group", [0, 1])
def test_opcheck(last_group):
    coords = random_coords(torch.Generator().manual_seed(0), [20, 9], (1, 16, 16))
    torch.library.opcheck(torch.ops.pc3d.flat_window_partition.default,
                          (coords, [16, 16, 1], [5, 5], 8, 0, True, last_group))


def test_raw_op_refuses_an_unknown_last_group_code():
    coords = random_coords(torch.Generator().manual_seed(0), [20], (1, 16, 16))
    with pytest.raises(ValueError, match=r"last_group must be 0 \(previous\) or 1 \(repeat\), got 2"):
        torch.ops.pc3d.flat_window_partition(coords, [16, 16, 1], [5, 5], 8, 0, True, 2)


def test_multithreaded_path_above_serial_threshold():
    # >= 262144 voxels: the kernels split the key pass, the radix sort and the group fill over threads.
    gen = torch.Generator().manual_seed(11)
    coords = random_coords(gen, [200_000, 100_000], (2, 468, 468))
    torch.set_num_threads(2)
    assert_same(coords, (2, 468, 468), (13, 13), 144, "y", True)
    assert_same(coords, (2, 468, 468), (13, 13), 144, "x", False, "repeat")


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
