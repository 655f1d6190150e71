"""The CUDA kernels against the CPU kernels (which the other test files check against plain-PyTorch
references), on random and adversarial inputs: voxelizers, the three partitioners, scattered linear
attention forward and backward, and the sparse-transformer backbones run end to end on the GPU.

Integer outputs (orders, indices, coords) must be bit-identical: the CUDA kernels promise the same
stable orders as the CPU ones. Floating outputs are compared with tolerances, since GPU sums run in
another order. Everything here needs a GPU and is skipped, with that reason, without one.
"""
import copy

import pytest
import torch

from pc3d.ops import (flat_window_partition, rotated_set_partition, scattered_linear_attention, sort_by_window,
                      voxelize_dynamic, voxelize_hard)
from tests.reference.partition_ref import random_coords
from tests.test_sla import assert_close_rel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA kernels need a GPU; none is present")

CUDA = torch.device("cuda")
SMALL = dict(voxel_size=[0.5, 0.5, 0.5], pc_range=[-4.0, -3.0, -1.0, 4.0, 3.0, 1.0])  # 16 x 12 x 4
WAYMO = dict(voxel_size=[0.1, 0.1, 0.15], pc_range=[-75.2, -75.2, -2.0, 75.2, 75.2, 4.0])


def both(fn, *tensors, **kw):
    """fn on the CPU tensors and on their CUDA copies -> (cpu_out, cuda_out moved back to the CPU)."""
    cpu = fn(*tensors, **kw)
    gpu = fn(*(t.to(CUDA) if isinstance(t, torch.Tensor) else t for t in tensors), **kw)
    for t in gpu:
        assert t.device.type == "cuda", "a CUDA call returned a CPU tensor"
    return tuple(cpu), tuple(t.cpu() for t in gpu)


def assert_equal(cpu, gpu, what):
    for i, (a, b) in enumerate(zip(cpu, gpu)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what} output {i}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
        assert torch.equal(a, b), f"{what} output {i} differs on {(a != b).sum().item()} of {a.numel()} entries"


def points(n, c=4, extent=5.0, zext=1.5, seed=0, dup=True):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand((n, c), generator=g) * 2 - 1
    pts[:, :2] *= extent
    pts[:, 2] *= zext
    if dup and n > 4:  # duplicates overflow max_points and put a voxel's points far apart in input order
        pts[torch.randint(0, n, (n // 4,), generator=g)] = pts[torch.randint(0, n, (n // 4,), generator=g)]
    return pts


# ----------------------------------------------------------------------------- voxelizers
@pytest.mark.parametrize("n", [0, 1, 7, 1000, 50_000])
def test_voxelize_single_sample(n):
    pts = points(n, seed=n)
    for p, m in ((5, 10_000), (3, 40), (1, 1)):  # caps that do not bite, that both bite, extreme
        assert_equal(*both(lambda x: voxelize_hard(x, SMALL["voxel_size"], SMALL["pc_range"], p, m), pts), f"hard {p},{m}")
    assert_equal(*both(lambda x: voxelize_dynamic(x, SMALL["voxel_size"], SMALL["pc_range"]), pts), "dynamic")


def test_voxelize_batched_unsorted_with_bad_points():
    """Shuffled batch ids with an empty sample, NaN/inf points, points on and outside the range's edges."""
    g = torch.Generator().manual_seed(3)
    pts = points(30_000, c=5, seed=3)
    pts[::97, 0] = float("nan")
    pts[::101, 1] = float("inf")
    pts[::89, 2] = -float("inf")
    pts[::53, 0] = 4.0  # x_max: outside (half-open range)
    pts[::59, 0] = -4.0  # x_min: inside
    pts[::61, :3] *= 3  # far outside
    bidx = torch.randint(0, 4, (pts.shape[0],), generator=g)
    bidx[bidx == 2] = 3  # sample 2 is empty
    for p, m in ((5, 10_000), (2, 25)):
        fn = lambda x, b: voxelize_hard(x, SMALL["voxel_size"], SMALL["pc_range"], p, m, batch_idx=b)
        cpu, gpu = both(fn, pts, bidx)
        assert_equal(cpu[1:], gpu[1:], "hard coords/num_points")
        torch.testing.assert_close(gpu[0], cpu[0], rtol=0, atol=0, equal_nan=True)
    assert_equal(*both(lambda x, b: voxelize_dynamic(x, SMALL["voxel_size"], SMALL["pc_range"], batch_idx=b),
                       pts, bidx), "dynamic batched")


def test_voxelize_one_voxel_and_a_waymo_sized_frame():
    """All points in one voxel (the longest run any sort sees), and 150k points on the Waymo grid."""
    one = torch.full((5000, 4), 0.01)
    one[:, 3] = torch.arange(5000, dtype=torch.float32)  # keeps track of which points were kept
    assert_equal(*both(lambda x: voxelize_hard(x, SMALL["voxel_size"], SMALL["pc_range"], 32, 10), one), "one voxel")
    big = points(150_000, c=5, extent=80.0, zext=3.0, seed=9, dup=False)
    fn = lambda x: voxelize_hard(x, WAYMO["voxel_size"], WAYMO["pc_range"], 5, 150_000)
    assert_equal(*both(fn, big), "waymo hard")
    assert_equal(*both(lambda x: voxelize_dynamic(x, WAYMO["voxel_size"], WAYMO["pc_range"]), big), "waymo dynamic")


# ----------------------------------------------------------------------------- partitioners
def coord_sets():
    """(name, coords (V, 4) int32, sparse_shape): random batches, one voxel, no voxels, a fully occupied
    block, a 468 x 468 two-frame batch, an empty middle sample."""
    g = torch.Generator().manual_seed(0)
    sets = [("random", random_coords(g, [900, 1500, 40], (2, 60, 70)), (2, 60, 70)),
            ("one voxel", torch.tensor([[0, 0, 59, 69]], dtype=torch.int32), (2, 60, 70)),
            ("none", torch.zeros(0, 4, dtype=torch.int32), (2, 60, 70)),
            ("dense block", random_coords(g, [600], (2, 60, 70), dense=(0, 0, 0, 2, 20, 15)), (2, 60, 70)),
            ("frame 468", random_coords(g, [60_000, 45_000], (1, 468, 468)), (1, 468, 468))]
    gap = random_coords(g, [300, 0, 200], (2, 60, 70))  # sample 1 has no voxel
    sets.append(("empty middle sample", gap, (2, 60, 70)))
    return sets


@pytest.mark.parametrize("name,coords,shape", coord_sets(), ids=[s[0] for s in coord_sets()])
def test_flat_window_partition(name, coords, shape):
    for window, G in (((5, 7), 1), ((13, 13), 144), ((12, 12), 69), ((3, 3), 5000)):
        for axis in ("x", "y"):
            for shift in (False, True):
                for last_group in ("previous", "repeat"):
                    fn = lambda c: flat_window_partition(c, shape, window, G, axis, shift, last_group)
                    assert_equal(*both(fn, coords), f"flat {name} {window} G={G} {axis} shift={shift} {last_group}")


@pytest.mark.parametrize("name,coords,shape", coord_sets(), ids=[s[0] for s in coord_sets()])
def test_rotated_sets_and_window_sort(name, coords, shape):
    D = shape[0]
    for window, tau in (((D, 12, 12), 36), ((1, 5, 7), 1), ((D, 30, 30), 144), ((D, 4, 4), 1000)):
        for shift in (False, True, (0, 2, 3)):
            fn = lambda c: rotated_set_partition(c, shape, window, tau, shift)
            assert_equal(*both(fn, coords), f"sets {name} {window} tau={tau} shift={shift}")
            fn = lambda c: sort_by_window(c, shape, window, shift)
            assert_equal(*both(fn, coords), f"sort_by_window {name} {window} shift={shift}")


def test_partitions_are_deterministic_on_the_gpu():
    g = torch.Generator().manual_seed(5)
    coords = random_coords(g, [40_000, 30_000], (1, 468, 468)).to(CUDA)
    runs = [(tuple(flat_window_partition(coords, (1, 468, 468), 13, 144)),
             tuple(rotated_set_partition(coords, (1, 468, 468), 12, 36, True)),
             tuple(sort_by_window(coords, (1, 468, 468), 12))) for _ in range(3)]
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert_equal(a, b, "repeat")


# ----------------------------------------------------------------------------- scattered linear attention
def sla_inputs(seed, dtype, N, h, d, dv, W, gaps):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, max(1, 2 * N // max(W, 1)), (W,), generator=g)  # zero-row windows included
    gap = torch.randint(0, 3, (W,), generator=g) if gaps else torch.zeros(W, dtype=torch.int64)
    offsets = torch.cumsum(counts + gap, 0) - counts
    n = int((offsets + counts)[-1]) + (2 if gaps else 0) if W else N
    q, k = (torch.randn(n, h, d, generator=g, dtype=dtype) for _ in range(2))
    v = torch.randn(n, h, dv, generator=g, dtype=dtype)
    return q, k, v, offsets, counts


def sla_fwd_bwd(q, k, v, offsets, counts, grad):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out = scattered_linear_attention(q, k, v, offsets, counts)
    out.backward(grad)
    return out.detach(), q.grad, k.grad, v.grad


SLA_SHAPES = {"many rows": (3000, 4, 32, 32, 50, False), "odd dims gaps": (2000, 3, 5, 7, 300, True),
              "one huge window": (20_000, 2, 16, 16, 1, False), "d=1 tiny windows": (500, 1, 1, 1, 500, True)}
# float32 leaves out d = 1, whose gradients are pure cancellation that float32 cannot resolve (test_sla.py).
SLA_CASES = [(torch.float64, 1e-10, name) for name in SLA_SHAPES] + \
            [(torch.float32, 2e-4, name) for name in SLA_SHAPES if SLA_SHAPES[name][2] > 1]


@pytest.mark.parametrize("dtype,rel,case", SLA_CASES, ids=[f"{str(d)[6:]}-{c}" for d, _, c in SLA_CASES])
def test_scattered_linear_attention_forward_backward(dtype, rel, case):
    N, h, d, dv, W, gaps = SLA_SHAPES[case]
    q, k, v, offsets, counts = sla_inputs(7, dtype, N, h, d, dv, W, gaps)
    grad = torch.randn(q.shape[0], h, dv, dtype=dtype, generator=torch.Generator().manual_seed(1))
    cpu = sla_fwd_bwd(q, k, v, offsets, counts, grad)
    gpu = sla_fwd_bwd(*(t.to(CUDA) for t in (q, k, v, offsets, counts, grad)))
    for name, a, b in zip(("out", "grad q", "grad k", "grad v"), cpu, gpu):
        assert b.device.type == "cuda"
        assert_close_rel(b.cpu(), a, rel, name)


def test_scattered_linear_attention_no_windows_gives_zeros():
    q = torch.randn(6, 2, 4, device=CUDA)
    empty = torch.zeros(0, dtype=torch.int64, device=CUDA)
    assert torch.equal(scattered_linear_attention(q, q, q, empty, empty), torch.zeros_like(q))


# ----------------------------------------------------------------------------- backbones end to end
@pytest.fixture
def no_tf32():
    """Full float32 matmuls and convolutions on the GPU (cuDNN allows TF32 by default), restored after."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


@pytest.mark.parametrize("name", ["flatformer_full_cpe", "flatformer_stem", "dsvt_voxel_stem",
                                  "dsvt_pillar"])
def test_backbone_forward_backward_on_gpu_matches_cpu(name, no_tf32):
    from tests.test_backbones import make, random_voxels

    model, shape = make(name)
    model.eval()  # batch norm with running stats: the same function on both devices
    voxels = random_voxels([900, 700], shape, seed=2)
    cpu_model, gpu_model = model, copy.deepcopy(model).to(CUDA)
    outs, grads = [], []
    for m, dev in ((cpu_model, "cpu"), (gpu_model, CUDA)):
        v = type(voxels)(voxels.feats.to(dev).requires_grad_(), voxels.coords.to(dev), voxels.spatial_shape,
                         voxels.batch_size)
        out = m(v)
        # A fixed random projection as the loss: sum(out^2) after a LayerNorm has an almost-zero gradient
        # (LayerNorm's output norm is fixed), which leaves only rounding noise to compare.
        proj = torch.randn(out.feats.shape, generator=torch.Generator().manual_seed(4)).to(dev)
        (out.feats * proj).sum().backward()
        outs.append(out)
        grads.append({n: p.grad.cpu() for n, p in m.named_parameters() if p.grad is not None})
    cpu_out, gpu_out = outs
    assert gpu_out.feats.device.type == "cuda"
    assert torch.equal(gpu_out.coords.cpu(), cpu_out.coords)
    # float32 (the backbones' position encodings are float32): GPU sums run in another order.
    assert_close_rel(gpu_out.feats.detach().cpu(), cpu_out.feats.detach(), 1e-4, "features")
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        assert_close_rel(grads[1][n], grads[0][n], 1e-3, f"grad {n}")


def test_scatterformer_spconv_stem_and_sla_on_gpu_match_cpu(no_tf32):
    # ScatterFormer on the GPU: spconv's stem, strided convs and max-pool, the compiled scattered linear attention
    # and the depthwise convs. spconv's GPU kernels emit rows in another order than its CPU ones, so outputs are
    # compared by cell, with the pooling attending every pillar to its own slots ('matched'); the official
    # pairing follows each device's row order and is only run.
    from tests.test_backbones import by_cell, cell_keys, random_voxels
    from tests.test_official_scatterformer import SHAPE, randomize_norms, small_backbone

    model = randomize_norms(small_backbone(pool_pairing="matched")).eval()
    voxels = random_voxels([900, 700], SHAPE, seed=2)
    outs, feats, grads = [], [], []
    for m, dev in ((model, "cpu"), (copy.deepcopy(model).to(CUDA), CUDA)):
        v = type(voxels)(voxels.feats.to(dev).requires_grad_(), voxels.coords.to(dev), voxels.spatial_shape,
                         voxels.batch_size)
        out = m(v)
        ordered = by_cell(out)
        proj = torch.randn(ordered.shape, generator=torch.Generator().manual_seed(4)).to(dev)
        (ordered * proj).sum().backward()
        outs.append(out)
        feats.append(ordered.detach().cpu())
        grads.append({n: p.grad.cpu() for n, p in m.named_parameters() if p.grad is not None})
    assert outs[1].feats.device.type == "cuda"
    assert torch.equal(torch.sort(cell_keys(outs[1]).cpu())[0], torch.sort(cell_keys(outs[0]))[0])
    assert_close_rel(feats[1], feats[0], 1e-4, "features")
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        assert_close_rel(grads[1][n], grads[0][n], 1e-3, f"grad {n}")
    official = copy.deepcopy(model).to(CUDA)
    official.pool.pairing = "official"
    with torch.no_grad():
        out = official(type(voxels)(voxels.feats.to(CUDA), voxels.coords.to(CUDA), voxels.spatial_shape, 2))
    assert torch.equal(torch.sort(cell_keys(out).cpu())[0], torch.sort(cell_keys(outs[0]))[0])
    assert bool(torch.isfinite(out.feats).all())
