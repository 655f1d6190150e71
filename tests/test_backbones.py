"""Sparse-transformer backbones (FlatFormer, DSVT-P/V; ScatterFormer in test_official_scatterformer.py):
forward/backward and shapes, permutation equivariance, batch independence, and that masked padding duplicates
change nothing."""
import pytest
import torch

from pc3d.models.backbones3d import DSVT, FlatFormer
from pc3d.models.backbones3d.sparse_depthwise import (DepthwiseSubmConv, SubmConv, kernel_offsets, neighbor_table,
                                                      neighbor_tables)
from pc3d.models.structures import SparseVoxels

C_IN = 8


def random_voxels(counts, shape, seed=0, extent=None):
    """SparseVoxels with counts[b] distinct random cells per sample on grid shape (D, H, W); cells drawn
    from the sub-box ``extent`` (D, H, W) when given."""
    g = torch.Generator().manual_seed(seed)
    d, h, w = extent or shape
    coords, feats = [], []
    for b, n in enumerate(counts):
        cells = torch.randperm(d * h * w, generator=g)[:n]
        z, y, x = cells // (h * w), (cells // w) % h, cells % w
        coords.append(torch.stack([torch.full_like(z, b), z, y, x], 1))
        feats.append(torch.randn(n, C_IN, generator=g))
    return SparseVoxels(torch.cat(feats), torch.cat(coords).int(), tuple(shape), len(counts))


def make(name):
    return _make(name)


def _make(name, **kw):
    torch.manual_seed(0)
    if name == "flatformer":
        return FlatFormer(C_IN, channels=16, num_heads=2, num_blocks=1, window_shape=(5, 5), group_size=12,
                          ffn_channels=32, **kw), (1, 24, 24)
    if name == "dsvt_pillar":
        return DSVT(C_IN, channels=16, num_heads=2, ffn_channels=32, num_blocks=2, window_shape=(6, 6), set_size=8,
                    shift=(0, 3, 3), **kw), (1, 24, 24)
    if name == "dsvt_voxel":
        return DSVT(C_IN, channels=[16, 24], num_heads=2, ffn_channels=32, num_blocks=1,
                    window_shape=[(4, 6, 6), (1, 6, 6)], set_size=8, pool_strides=[(4, 1, 1)], **kw), (4, 24, 24)
    if name == "dsvt_voxel_blocks":  # two blocks in stage 2: the configuration counter runs across stages
        return DSVT(C_IN, channels=[16, 24], num_heads=2, ffn_channels=32, num_blocks=[1, 2],
                    window_shape=[(4, 6, 6), (1, 6, 6)], set_size=8, pool_strides=[(4, 1, 1)], **kw), (4, 24, 24)
    raise KeyError(name)


NAMES = ["flatformer", "dsvt_pillar", "dsvt_voxel", "dsvt_voxel_blocks"]
ALL = NAMES


def cell_keys(v: SparseVoxels):
    c = v.coords.long()
    d, h, w = v.spatial_shape
    return ((c[:, 0] * d + c[:, 1]) * h + c[:, 2]) * w + c[:, 3]


def by_cell(v: SparseVoxels):
    """Output features sorted by voxel cell, so outputs of differently ordered inputs can be compared."""
    return v.feats[torch.argsort(cell_keys(v))]


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_shapes(name):
    model, shape = make(name)
    voxels = random_voxels([70, 45], shape, seed=1)
    voxels.feats.requires_grad_(True)
    out = model(voxels)
    base = name.partition("+")[0].removesuffix("_cpe").removesuffix("_stem").removesuffix("_cos")\
        .removesuffix("_blocks")
    pooled = base in ("dsvt_voxel",)
    d_out = 1 if pooled else shape[0]
    assert out.spatial_shape == (d_out, shape[1], shape[2])
    assert out.feats.shape == (out.coords.shape[0], model.out_channels)
    assert out.coords.dtype == torch.int32 and out.batch_size == 2
    if d_out == shape[0]:
        assert torch.equal(out.coords, voxels.coords)
    else:  # pooled to pillars: one row per occupied (b, y, x)
        pillars = torch.unique(voxels.coords[:, [0, 2, 3]], dim=0)
        assert torch.equal(torch.unique(out.coords[:, [0, 2, 3]], dim=0), pillars)
        assert out.coords.shape[0] == pillars.shape[0] and bool((out.coords[:, 1] == 0).all())
    out.feats.square().sum().backward()
    assert voxels.feats.grad is not None and voxels.feats.grad.abs().sum() > 0
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad}"


@pytest.mark.parametrize("name", ALL)
def test_permutation_equivariance(name):
    model, shape = make(name)
    model.eval()
    voxels = random_voxels([60, 50], shape, seed=2)
    perm = torch.randperm(voxels.feats.shape[0], generator=torch.Generator().manual_seed(3))
    shuffled = SparseVoxels(voxels.feats[perm], voxels.coords[perm], shape, 2)
    with torch.no_grad():
        a, b = model(voxels), model(shuffled)
    assert a.feats.shape == b.feats.shape
    torch.testing.assert_close(by_cell(a), by_cell(b), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_batch_independence(name):
    model, shape = make(name)
    model.eval()
    pair = random_voxels([55, 80], shape, seed=4)
    first = pair.coords[:, 0] == 0
    alone = SparseVoxels(pair.feats[first], pair.coords[first], shape, 1)
    with torch.no_grad():
        out_pair, out_alone = model(pair), model(alone)
    in_pair = SparseVoxels(out_pair.feats[out_pair.coords[:, 0] == 0], out_pair.coords[out_pair.coords[:, 0] == 0],
                           out_pair.spatial_shape, 1)
    torch.testing.assert_close(by_cell(in_pair), by_cell(out_alone), atol=1e-5, rtol=1e-5)


def test_flatformer_padding_duplicates_change_nothing():
    # One sample of 10 voxels: with G = 10 it is one full group; with G = 23 the same group is padded by
    # 13 repeated voxels (a sample of fewer than G voxels has no previous group to fill from: its repeats
    # are masked). Attention over the same 10 real voxels must give the same outputs.
    voxels = random_voxels([10], (1, 24, 24), seed=5)
    outs = []
    for g in (10, 23):
        torch.manual_seed(0)
        model = FlatFormer(C_IN, channels=16, num_heads=2, num_blocks=1, window_shape=(5, 5), group_size=g,
                           ffn_channels=32).eval()
        with torch.no_grad():
            outs.append(model(voxels).feats)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)


def test_flatformer_small_sample_in_batch_matches_alone():
    # Sample 1 has fewer voxels than a group (padded); its result must not depend on sample 0's groups.
    model, shape = make("flatformer")
    model.eval()
    pair = random_voxels([40, 5], shape, seed=6)
    second = pair.coords[:, 0] == 1
    coords = pair.coords[second].clone()
    coords[:, 0] = 0
    with torch.no_grad():
        a = model(pair).feats[second]
        b = model(SparseVoxels(pair.feats[second], coords, shape, 1)).feats
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_dsvt_set_padding_changes_nothing():
    # 20 voxels inside one 6 x 6 window (and one shifted 12 x 12 window): with tau = 20 one exact set, with
    # tau = 32 one set padded by 12 repeats (masked keys). Same attention, same outputs.
    voxels = random_voxels([20], (1, 24, 24), seed=7, extent=(1, 6, 6))
    outs = []
    for tau in (20, 32):
        torch.manual_seed(0)
        model = DSVT(C_IN, channels=16, num_heads=2, ffn_channels=32, num_blocks=2, window_shape=(6, 6),
                     set_size=tau, shift=(0, 3, 3)).eval()
        with torch.no_grad():
            outs.append(model(voxels).feats)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)


def test_neighbor_table_matches_brute_force():
    voxels = random_voxels([30, 30], (3, 7, 7), seed=8)
    offsets = kernel_offsets((3, 3, 5))
    table = neighbor_table(voxels.coords, voxels.spatial_shape, offsets)
    where = {tuple(c): i for i, c in enumerate(voxels.coords.tolist())}
    for i, (b, z, y, x) in enumerate(voxels.coords.tolist()):
        for k, (dz, dy, dx) in enumerate(offsets.tolist()):
            assert table[i, k].item() == where.get((b, z + dz, y + dy, x + dx), 60)


def test_neighbor_tables_look_each_kernel_up_once():
    voxels = random_voxels([30, 30], (3, 7, 7), seed=8)
    convs = [DepthwiseSubmConv(4, (3, 3, 3)), DepthwiseSubmConv(4, (1, 1, 5)), SubmConv(4, 4, (3, 3, 3))]
    tables = neighbor_tables(voxels.coords, voxels.spatial_shape, convs)
    for conv, table in zip(convs, tables):
        assert torch.equal(table, neighbor_table(voxels.coords, voxels.spatial_shape, conv.offsets))
    assert tables[0] is tables[2] and tables[1] is not tables[0]


def test_kernel_offsets_reject_malformed_kernels():
    with pytest.raises(ValueError, match=r"kernel_size must be \(kz, ky, kx\), got \(3, 3\)"):
        SubmConv(C_IN, 4, (3, 3))
    with pytest.raises(ValueError, match="kernel_size must be odd and positive"):
        DepthwiseSubmConv(C_IN, (3, 2, 3))


def dense_reference_conv(conv, voxels):
    """Plain-PyTorch reference of a submanifold conv: scatter the voxels into a dense (B, C, D, H, W) grid
    (empty cells zero), run ``F.conv3d`` with 'same' padding, read the output back at the input voxels."""
    c_in = voxels.feats.shape[1]
    grid = torch.zeros(voxels.batch_size, c_in, *voxels.spatial_shape, dtype=torch.float64)
    b, z, y, x = voxels.coords.long().unbind(1)
    grid[b, :, z, y, x] = voxels.feats.double()
    kz, ky, kx = conv.kernel_size
    if isinstance(conv, DepthwiseSubmConv):  # weight (K, C) -> (C, 1, kz, ky, kx), one group per channel
        weight, groups, bias = conv.weight.T.reshape(c_in, 1, kz, ky, kx), c_in, conv.bias
    else:  # weight (K, C_in, C_out) -> (C_out, C_in, kz, ky, kx)
        weight, groups, bias = conv.weight.permute(2, 1, 0).reshape(-1, c_in, kz, ky, kx), 1, None
    out = torch.nn.functional.conv3d(grid, weight.double(), None if bias is None else bias.double(),
                                     padding=(kz // 2, ky // 2, kx // 2), groups=groups)
    return out[b, :, z, y, x]


@pytest.mark.parametrize("depthwise", [True, False])
@pytest.mark.parametrize("kernel", [(3, 3, 3), (1, 3, 5), (3, 1, 1)])
def test_submanifold_convs_match_dense_conv3d(depthwise, kernel):
    # Random sparse cells, and adversarial ones: a fully occupied corner block (every neighbour present,
    # grid edges cut the kernel) and an isolated voxel (only the centre tap), in a 2-sample batch whose
    # samples share cells (a neighbour lookup that ignored the batch index would mix them).
    voxels = random_voxels([40, 25], (3, 7, 7), seed=12)
    corner = torch.tensor([[b, z, y, x] for b in (0, 1) for z in range(2) for y in range(2) for x in range(2)])
    lone = torch.tensor([[1, 1, 5, 5]])
    c = voxels.coords.long()
    keep = ~((c[:, None, :] == corner[None]).all(-1).any(1))
    keep &= ~((c[:, 0] == 1) & ((c[:, 1:] - lone[0, 1:]).abs() <= 2).all(1))  # nothing near the lone voxel
    coords = torch.cat([voxels.coords[keep].long(), corner, lone]).int()
    feats = torch.randn(coords.shape[0], C_IN, generator=torch.Generator().manual_seed(13)).requires_grad_(True)
    voxels = SparseVoxels(feats, coords, voxels.spatial_shape, 2)
    torch.manual_seed(3)
    conv = DepthwiseSubmConv(C_IN, kernel) if depthwise else SubmConv(C_IN, 5, kernel)
    with torch.no_grad():
        if depthwise:
            conv.bias.normal_()
    out = conv(voxels.feats, neighbor_table(voxels.coords, voxels.spatial_shape, conv.offsets))
    reference = dense_reference_conv(conv, voxels)
    torch.testing.assert_close(out.double(), reference, atol=1e-5, rtol=1e-5)
    # The backward (gradients of the gathers and index-adds) against the dense conv's autograd.
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(14))
    grads = torch.autograd.grad((out * upstream).sum(), [feats, conv.weight])
    expected = torch.autograd.grad((reference * upstream.double()).sum(), [feats, conv.weight])
    for name, got, want in zip(("feats", "weight"), grads, expected):
        torch.testing.assert_close(got.double(), want.double(), atol=1e-4, rtol=1e-5, msg=lambda m: f"{name}: {m}")
    out = out.detach()
    if not depthwise:  # the isolated voxel sees only itself: its output is the centre tap alone
        centre = conv.weight[conv.weight.shape[0] // 2]
        torch.testing.assert_close(out[-1], voxels.feats[-1] @ centre, atol=1e-5, rtol=1e-5)


def test_dsvt_rejects_mismatched_stage_lists():
    with pytest.raises(ValueError, match="channels needs one entry per stage"):
        DSVT(C_IN, channels=[16, 16, 16], pool_strides=[(2, 1, 1)])


@pytest.mark.parametrize("name", ALL)
def test_empty_input_gives_empty_output(name):
    model, shape = make(name)
    empty = SparseVoxels(torch.zeros(0, C_IN), torch.zeros(0, 4, dtype=torch.int32), shape, 1)
    out = model.eval()(empty)
    assert out.feats.shape == (0, model.out_channels) and out.coords.shape == (0, 4)


@pytest.mark.parametrize("depthwise", [True, False])
def test_sparseconv_benchmark_baseline_computes_the_same_conv(depthwise):
    # The 'sparseconv' benchmark suite times the convs against gathering all K rows; that baseline must be the
    # same conv (no bias), or its speedup would compare different work.
    from pc3d.benchmark.suite_sparseconv import gather_all

    voxels = random_voxels([40, 25], (3, 7, 7), seed=15)
    torch.manual_seed(4)
    conv = DepthwiseSubmConv(C_IN, (3, 3, 3)) if depthwise else SubmConv(C_IN, 5, (3, 3, 3))
    table = neighbor_table(voxels.coords, voxels.spatial_shape, conv.offsets)
    with torch.no_grad():
        torch.testing.assert_close(gather_all(voxels.feats, table, conv.weight, depthwise), conv(voxels.feats, table),
                                   atol=1e-5, rtol=1e-5)
