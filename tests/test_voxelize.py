"""pc3d.ops voxelize_hard / voxelize_dynamic / scatter_points vs the plain-PyTorch references in
tests/reference/voxelize_ref.py, on random, adversarial and real inputs, plus opcheck and bad input."""
import pytest
import torch
from reference import voxelize_ref as ref

from pc3d.ops import scatter_points, voxelize_dynamic, voxelize_hard
from pc3d.ops.voxelize import grid_shape

WAYMO = dict(voxel_size=[0.1, 0.1, 0.15], pc_range=[-75.2, -75.2, -2.0, 75.2, 75.2, 4.0])
PILLAR = dict(voxel_size=[0.32, 0.32, 6.0], pc_range=[-75.2, -75.2, -2.0, 75.2, 75.2, 4.0])
SMALL = dict(voxel_size=[0.5, 0.5, 0.5], pc_range=[-4.0, -3.0, -1.0, 4.0, 3.0, 1.0])  # 16 x 12 x 4


def random_points(n, c=4, extent=5.0, seed=0, zext=1.5):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand((n, c), generator=g) * 2 - 1
    pts[:, :2] *= extent
    pts[:, 2] *= zext
    # Duplicate some points so voxels overflow max_points and a voxel has points far apart in input order.
    if n > 4:
        dup = torch.randint(0, n, (n // 4,), generator=g)
        pts[torch.randint(0, n, (n // 4,), generator=g)] = pts[dup]
    return pts


def assert_hard_equal(points, settings, p, m, batch_idx=None, as_list=None):
    out = voxelize_hard(as_list if as_list is not None else points, settings["voxel_size"], settings["pc_range"],
                        p, m, batch_idx=None if as_list is not None else batch_idx)
    exp = ref.voxelize_hard_ref(points, settings["voxel_size"], settings["pc_range"], p, m, batch_idx)
    assert out.coords.dtype == torch.int32 and out.num_points.dtype == torch.int32
    assert out.voxels.shape == exp[0].shape, (out.voxels.shape, exp[0].shape)
    torch.testing.assert_close(out.coords, exp[1], rtol=0, atol=0)
    torch.testing.assert_close(out.num_points, exp[2], rtol=0, atol=0)
    torch.testing.assert_close(out.voxels, exp[0], rtol=0, atol=0, equal_nan=True)
    return out


def assert_dynamic_equal(points, settings, batch_idx=None, as_list=None):
    out = voxelize_dynamic(as_list if as_list is not None else points, settings["voxel_size"], settings["pc_range"],
                           batch_idx=None if as_list is not None else batch_idx)
    exp = ref.voxelize_dynamic_ref(points, settings["voxel_size"], settings["pc_range"], batch_idx)
    torch.testing.assert_close(out.point_coords, exp[0], rtol=0, atol=0)
    torch.testing.assert_close(out.coords, exp[1], rtol=0, atol=0)
    torch.testing.assert_close(out.point2voxel, exp[2], rtol=0, atol=0)
    return out


@pytest.mark.parametrize("n", [0, 1, 17, 1000, 20000])
@pytest.mark.parametrize("c", [3, 5, 7])
def test_hard_and_dynamic_random_single_sample(n, c):
    pts = random_points(n, c, seed=n + c)
    assert_hard_equal(pts, SMALL, p=5, m=10_000)
    assert_hard_equal(pts, SMALL, p=3, m=40)  # voxel and point caps both bite
    assert_dynamic_equal(pts, SMALL)


@pytest.mark.parametrize("n", range(1, 9))
def test_tiny_inputs_inside_the_range(n):
    """1-8 in-range points: the scratch buffers' alignment padding dominates their size here (a
    workspace sized by totals, not per buffer, once failed with bad_alloc for one point)."""
    pts = torch.rand(n, 3) - 0.5  # all within SMALL's range
    for p, m in [(1, 1), (3, 1), (1, 3), (5, 100)]:
        assert_hard_equal(pts, SMALL, p=p, m=m)
    assert_dynamic_equal(pts, SMALL)


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_batched_with_batch_idx_and_list(batch):
    g = torch.Generator().manual_seed(batch)
    pts = random_points(3000 * batch, 5, seed=batch)
    bidx = torch.randint(0, batch, (len(pts),), generator=g)  # unsorted: samples interleaved
    out = assert_hard_equal(pts, SMALL, p=4, m=150, batch_idx=bidx)
    # max_voxels is per sample: every sample keeps at most 150 voxels, samples in ascending order.
    counts = torch.bincount(out.coords[:, 0].long(), minlength=batch)
    assert (counts <= 150).all() and (counts > 0).all()
    assert (out.coords[1:, 0] >= out.coords[:-1, 0]).all()
    assert_dynamic_equal(pts, SMALL, batch_idx=bidx)
    # A list of samples is the same as the concatenation with sorted batch indices.
    sizes = [len(pts) // batch + k for k in range(batch)]
    sizes[-1] = len(pts) - sum(sizes[:-1])
    parts = list(torch.split(pts, sizes))
    sorted_bidx = torch.repeat_interleave(torch.arange(batch), torch.tensor(sizes))
    assert_hard_equal(pts, SMALL, p=4, m=150, batch_idx=sorted_bidx, as_list=parts)
    assert_dynamic_equal(pts, SMALL, batch_idx=sorted_bidx, as_list=parts)


def test_list_with_empty_sample():
    parts = [random_points(100, 4, seed=1), torch.zeros((0, 4)), random_points(50, 4, seed=2)]
    out = voxelize_hard(parts, SMALL["voxel_size"], SMALL["pc_range"], 5, 1000)
    assert set(out.coords[:, 0].tolist()) == {0, 2}


@pytest.mark.parametrize("threads", [1, 2])
def test_multi_chunk_parallel_path(threads):
    # >= 2 x 32768 points so the kernels split work into chunks; the result must not depend on it.
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        pts = random_points(90_000, 4, extent=20.0, seed=3)
        bidx = torch.randint(0, 3, (len(pts),), generator=torch.Generator().manual_seed(0))
        assert_hard_equal(pts, WAYMO, p=5, m=20_000, batch_idx=bidx)
        assert_dynamic_equal(pts, WAYMO, batch_idx=bidx)
    finally:
        torch.set_num_threads(old)


def test_pillars():
    pts = random_points(5000, 4, extent=30.0, seed=4, zext=1.9)
    out = assert_hard_equal(pts, PILLAR, p=32, m=12_000)
    assert grid_shape(PILLAR["voxel_size"], PILLAR["pc_range"]) == (470, 470, 1)
    assert (out.coords[:, 1] == 0).all()  # one z cell: every point of a column shares a pillar
    xy = torch.floor((pts[:, :2] + 75.2) / 0.32).long()
    assert len(out.coords) == len(torch.unique(xy[:, 1] * 470 + xy[:, 0]))
    assert_dynamic_equal(pts, PILLAR)


def test_range_boundaries_min_inclusive_max_exclusive():
    lo, hi = SMALL["pc_range"][:3], SMALL["pc_range"][3:]

    def f32_next(x, toward):  # the neighbouring float32 value
        return torch.nextafter(torch.tensor(x), torch.tensor(toward)).item()

    pts = torch.tensor([
        [lo[0], lo[1], lo[2]],  # min corner: kept, voxel (0, 0, 0)
        [hi[0], 0.0, 0.0],  # x at max: dropped
        [0.0, hi[1], 0.0],  # y at max: dropped
        [0.0, 0.0, hi[2]],  # z at max: dropped
        [hi[0] - 0.25, hi[1] - 0.25, hi[2] - 0.25],  # centre of the last voxel
        [f32_next(hi[0], 0), f32_next(hi[1], 0), f32_next(hi[2], 0)],  # float32 below max: (p-min)/size rounds to W
        [f32_next(lo[0], -10), 0.0, 0.0],  # just below min: dropped
        [0.5, 0.5, 0.5],  # exactly on an inner voxel face: the upper voxel
    ], dtype=torch.float32)
    out = assert_dynamic_equal(pts, SMALL)
    assert out.point2voxel.tolist()[1:4] == [-1, -1, -1] and out.point2voxel[6] == -1
    assert out.point_coords[0].tolist() == [0, 0, 0, 0]
    assert out.point_coords[4].tolist() == [0, 3, 11, 15]
    assert out.point2voxel[5] == -1  # same float32 quotient rule as spconv/mmdet3d, so same drop
    assert out.point_coords[7].tolist() == [0, 3, 7, 9]
    assert_hard_equal(pts, SMALL, 2, 10)


def test_nan_inf_points_are_dropped():
    pts = random_points(200, 4, seed=5)
    bad = torch.tensor([float("nan"), float("inf"), -float("inf")])
    for k in range(30):
        pts[k * 5, k % 3] = bad[k % 3]
    pts[1, :3] = 0.0
    pts[1, 3] = float("nan")  # NaN in a feature column is carried, not a reason to drop
    out = assert_dynamic_equal(pts, SMALL)
    assert (out.point2voxel[torch.arange(30) * 5] == -1).all()
    assert out.point2voxel[1] >= 0
    assert_hard_equal(pts, SMALL, 4, 100)


def test_all_in_one_voxel_and_duplicates():
    pts = torch.tensor([[0.1, 0.1, 0.1, float(k)] for k in range(50)])
    out = assert_hard_equal(pts, SMALL, 7, 10)
    assert out.voxels.shape == (1, 7, 4) and out.num_points.tolist() == [7]
    assert out.voxels[0, :, 3].tolist() == list(range(7))  # first points kept, in input order
    dyn = assert_dynamic_equal(pts, SMALL)
    assert len(dyn.coords) == 1 and (dyn.point2voxel == 0).all()


def test_first_seen_order_is_input_order():
    # Voxels listed in order of their first point, not in key order.
    pts = torch.tensor([[3.0, 2.0, 0.0], [-3.0, -2.0, 0.0], [3.1, 2.1, 0.1], [0.0, 0.0, 0.0]])
    out = voxelize_hard(pts, SMALL["voxel_size"], SMALL["pc_range"], 4, 10)
    assert out.coords.tolist() == [[0, 2, 10, 14], [0, 2, 2, 2], [0, 2, 6, 8]]
    assert out.num_points.tolist() == [2, 1, 1]


def test_empty_and_all_out_of_range():
    for pts in (torch.zeros((0, 5)), torch.full((10, 5), 100.0)):
        out = voxelize_hard(pts, SMALL["voxel_size"], SMALL["pc_range"], 5, 100)
        assert out.voxels.shape == (0, 5, 5) and out.coords.shape == (0, 4) and out.num_points.shape == (0,)
        dyn = voxelize_dynamic(pts, SMALL["voxel_size"], SMALL["pc_range"])
        assert dyn.coords.shape == (0, 4) and dyn.point_coords.shape == (len(pts), 4)
        assert (dyn.point2voxel == -1).all() and (dyn.point_coords == -1).all()


def test_huge_grid_uses_64bit_keys():
    # 2e5 x 2e5 x 2 cells x 2 samples > 2^32: the kernels' wide-key path.
    settings = dict(voxel_size=[1e-3, 1e-3, 1.0], pc_range=[-100.0, -100.0, -1.0, 100.0, 100.0, 1.0])
    pts = random_points(3000, 4, extent=0.5, seed=6, zext=0.9)
    bidx = torch.randint(0, 2, (len(pts),), generator=torch.Generator().manual_seed(1))
    assert_hard_equal(pts, settings, 3, 2000, batch_idx=bidx)
    assert_dynamic_equal(pts, settings, batch_idx=bidx)


def test_single_sample_wide_keys_hash_path():
    # One sample on a grid of 8e10 cells (> 2^32): the one-sample hash path with 16-byte slots.
    settings = dict(voxel_size=[1e-3, 1e-3, 1.0], pc_range=[-100.0, -100.0, -1.0, 100.0, 100.0, 1.0])
    pts = random_points(3000, 4, extent=0.5, seed=8, zext=0.9)
    assert_hard_equal(pts, settings, 3, 2000)
    assert_hard_equal(pts, settings, 2, 100_000)


def assert_paths_agree(pts, settings, p, m):
    """One sample without batch_idx (the one-thread hash path) == the same points with an all-zero
    batch_idx (the sort path), bit for bit."""
    a = voxelize_hard(pts, settings["voxel_size"], settings["pc_range"], p, m)
    b = voxelize_hard(pts, settings["voxel_size"], settings["pc_range"], p, m,
                      batch_idx=torch.zeros(len(pts), dtype=torch.long))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    return a


def test_hash_path_every_point_its_own_voxel():
    # 40k points on distinct cells of a lattice, shuffled: as many keys as points, so the table is at
    # its fullest (half) and probe runs are long; caps below and above the voxel count.
    g = torch.Generator().manual_seed(9)
    ij = torch.stack(torch.meshgrid(torch.arange(200), torch.arange(200), indexing="ij"), -1).reshape(-1, 2)
    pts = torch.zeros(len(ij), 4)
    pts[:, :2] = (ij.float() + 0.5) * 0.1 - 10.0
    pts[:, 2] = (torch.randint(0, 40, (len(ij),), generator=g).float() + 0.5) * 0.15 - 2.0
    pts[:, 3] = torch.rand(len(ij), generator=g)
    pts = pts[torch.randperm(len(pts), generator=g)]
    out = assert_paths_agree(pts, WAYMO, 5, 150_000)
    assert len(out.coords) == len(pts) and (out.num_points == 1).all()
    assert_paths_agree(pts, WAYMO, 5, 12_345)
    assert_hard_equal(pts[:5000], WAYMO, 5, 3000)


@pytest.mark.parametrize("threads", [1, 2])
def test_big_single_sample_either_path(threads):
    # >= 2^19 points: one thread keeps the hash path, two threads take the parallel sort path; the
    # same voxels either way (and as with an explicit batch_idx).
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        pts = random_points(600_000, 4, extent=40.0, seed=10, zext=2.5)
        a = assert_paths_agree(pts, WAYMO, 5, 150_000)
        torch.set_num_threads(3 - threads)
        b = voxelize_hard(pts, WAYMO["voxel_size"], WAYMO["pc_range"], 5, 150_000)
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    finally:
        torch.set_num_threads(old)


def test_real_scans_hash_and_sort_paths_agree(real_scans):
    for name in sorted(real_scans):
        assert_paths_agree(real_scans[name], WAYMO, 5, 150_000)
        assert_paths_agree(real_scans[name], WAYMO, 5, 20_000)  # the voxel cap bites
        assert_paths_agree(real_scans[name], PILLAR, 32, 150_000)


def check_real_scan(pts, settings):
    p = 5 if settings is WAYMO else 32
    out = assert_hard_equal(pts, settings, p, 150_000)
    assert len(out.coords) > 1000
    assert_dynamic_equal(pts, settings)


@pytest.mark.parametrize("settings", [WAYMO, PILLAR], ids=["waymo", "pillar"])
def test_real_scan(real_scans, settings):
    name = sorted(real_scans)[0]
    check_real_scan(real_scans[name], settings)


def test_real_scans_batched_with_voxel_cap(real_scans):
    a, b = (real_scans[k] for k in sorted(real_scans)[:2])
    bidx = torch.cat([torch.zeros(len(a), dtype=torch.long), torch.ones(len(b), dtype=torch.long)])
    out = assert_hard_equal(torch.cat([a, b]), WAYMO, 5, 3000, batch_idx=bidx)
    assert torch.bincount(out.coords[:, 0].long()).tolist() == [3000, 3000]


@pytest.mark.slow
@pytest.mark.parametrize("settings", [WAYMO, PILLAR], ids=["waymo", "pillar"])
def test_every_real_scan(real_scans, settings):
    for name in sorted(real_scans):
        check_real_scan(real_scans[name], settings)


@pytest.mark.parametrize("reduce", ["mean", "max", "sum"])
def test_scatter_points(reduce):
    pts = random_points(500, 6, seed=7)
    pts[::7, 0] = 100.0  # dropped -> ignored
    dyn = voxelize_dynamic(pts, SMALL["voxel_size"], SMALL["pc_range"])
    feats = pts[:, 3:].clone().requires_grad_(True)
    out = scatter_points(feats, dyn.point2voxel, len(dyn.coords), reduce)
    exp = ref.scatter_ref(feats.detach(), dyn.point2voxel, len(dyn.coords), reduce)
    torch.testing.assert_close(out.detach(), exp)
    out.sum().backward()
    assert (feats.grad[::7] == 0).all() and feats.grad.abs().sum() > 0
    full = scatter_points(feats.detach(), torch.zeros(500, dtype=torch.long), 2, reduce)
    assert (full[1] == 0).all()  # an empty voxel is 0


def test_opcheck():
    pts = random_points(64, 4, seed=8)
    bidx = torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(2))
    vs, pr = SMALL["voxel_size"], SMALL["pc_range"]
    dims = list(grid_shape(vs, pr))
    for b, bs in ((None, 1), (bidx, 2)):
        torch.library.opcheck(torch.ops.pc3d.voxelize_hard.default, (pts, b, vs, pr, dims, bs, 4, 30))
        torch.library.opcheck(torch.ops.pc3d.voxelize_dynamic.default, (pts, b, vs, pr, dims, bs))


@pytest.mark.parametrize("call, match", [
    (lambda: voxelize_hard(torch.zeros(5, 4, dtype=torch.float64), [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5), "points must be float32"),
    (lambda: voxelize_hard(torch.zeros(5, 2), [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5), r"points must be \(N, C>=3\)"),
    (lambda: voxelize_hard(torch.zeros(5), [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5), r"points must be \(N, C>=3\)"),
    (lambda: voxelize_hard("pts", [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5), "points must be a torch.Tensor"),
    (lambda: voxelize_hard([], [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5), "points is an empty list"),
    (lambda: voxelize_hard([torch.zeros(2, 4), torch.zeros(2, 5)], [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5), r"points\[1\]"),
    (lambda: voxelize_hard([torch.zeros(2, 4)], [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5, batch_idx=torch.zeros(2, dtype=torch.long)), "batch_idx must be None"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5, batch_idx=torch.zeros(5, dtype=torch.int32)), "batch_idx must be int64"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5, batch_idx=torch.zeros(4, dtype=torch.long)), r"batch_idx must be \(N,\)"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5, batch_idx=-torch.ones(5, dtype=torch.long)), "batch_idx must be >= 0"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 5, batch_idx=torch.zeros(5, dtype=torch.long, device="meta")), "batch_idx is on meta"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 0, 1], [0, 0, 0, 1, 1, 1], 5, 5), "voxel_size must be > 0"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, -1, 1], [0, 0, 0, 1, 1, 1], 5, 5), "voxel_size must be > 0"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1], [0, 0, 0, 1, 1, 1], 5, 5), "voxel_size must have 3 values"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, float("nan"), 1], [0, 0, 0, 1, 1, 1], 5, 5), "voxel_size must be finite"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 0, 1], 5, 5), "pc_range must have min < max"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 1], 5, 5), "pc_range must have 6 values"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 1, float("inf")], 5, 5), "pc_range must be finite"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 5], [0, 0, 0, 1, 1, 1], 5, 5), "the grid would have 0 cells"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1e-9, 1, 1], [0, 0, 0, 10, 1, 1], 5, 5), "more than the int32 coords can index"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1e-3] * 3, [-1e6] * 3 + [1e6] * 3, 5, 5), "overflows the int64 linear voxel index"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 1, 1], 0, 5), "max_points_per_voxel must be an int >= 1"),
    (lambda: voxelize_hard(torch.zeros(5, 4), [1, 1, 1], [0, 0, 0, 1, 1, 1], 5, 2.5), "max_voxels must be an int >= 1"),
    (lambda: voxelize_dynamic(torch.zeros(5, 4, dtype=torch.int32), [1, 1, 1], [0, 0, 0, 1, 1, 1]), "points must be float32"),
    (lambda: scatter_points(torch.zeros(5), torch.zeros(5, dtype=torch.long), 1), r"feats must be a floating \(N, F\)"),
    (lambda: scatter_points(torch.zeros(5, 2), torch.zeros(5, dtype=torch.int32), 1), "point2voxel must be an int64"),
    (lambda: scatter_points(torch.zeros(5, 2), torch.zeros(4, dtype=torch.long), 1), r"point2voxel must be \(N,\)"),
    (lambda: scatter_points(torch.zeros(5, 2), torch.full((5,), 3), 3), r"point2voxel values must be in \[-1, num_voxels=3\)"),
    (lambda: scatter_points(torch.zeros(5, 2), torch.full((5,), -2), 3), r"point2voxel values must be in"),
    (lambda: scatter_points(torch.zeros(5, 2), torch.zeros(5, dtype=torch.long), 1, "min"), "reduce must be one of"),
    (lambda: scatter_points(torch.zeros(5, 2), torch.zeros(5, dtype=torch.long), -1), "num_voxels must be an int >= 0"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_kernel_rejects_out_of_range_batch_index_directly():
    # The raw op re-checks what it indexes with, even though the Python face validates first.
    pts = torch.zeros((3, 4))
    with pytest.raises(RuntimeError, match="batch_idx has values outside"):
        torch.ops.pc3d.voxelize_hard(pts, torch.tensor([0, 5, 0]), [1.0] * 3, [-1.0] * 3 + [1.0] * 3, [2, 2, 2], 2, 4, 10)
