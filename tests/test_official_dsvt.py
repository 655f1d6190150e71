"""DSVT-P and DSVT-V against the released code's outputs (golden cases ``dsvt_voxel_waymo*``,
``dsvt_pillar_waymo_small`` and the backbone part of ``dsvt_pillar_waymo_detector``, the last two full cases
through the paper configs' backbones), and the checkpoint conversion's refusals.

Each case folder holds the official module's config (``info.json``), its random weights in an OpenPCDet
container, the input voxels and the official outputs. The pc3d model is built from that config, takes the
converted weights, and must give the same voxel features (matched by coords) and, for DSVT-V, the same pooled
voxel sets after every stage.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from official_golden import assert_voxels_close, case_dirs, load_case, require_case
from pc3d.apis.convert import CheckpointConversionError, convert_state, load_official_state
from pc3d.models.backbones3d import DSVT
from pc3d.models.backbones3d.dsvt import StagePooling, window_offsets
from pc3d.models.structures import SparseVoxels

VOXEL_CASES = ["dsvt_voxel_waymo", "dsvt_voxel_waymo_small"]
PILLAR_CASES = ["dsvt_pillar_waymo_small"]
DETECTOR_CASE = "dsvt_pillar_waymo_detector"


def dsvt_from_official(cfg):
    """The pc3d DSVT of an official ``BACKBONE_3D`` config (dict as in ``info.json``), and its grid (D, H, W)."""
    inp = cfg["INPUT_LAYER"]
    nx, ny, nz = inp["sparse_shape"]
    assert cfg.get("reduction_type", "attention") == "attention" and cfg["activation"] == "gelu"
    assert not inp["normalize_pos"] and cfg["dropout"] == 0
    for shifts in inp["shifts_list"]:
        assert list(shifts[0]) == [0, 0, 0], "config 0 is unshifted in the released configs"
    fx, fy, fz = inp["hybrid_factor"]
    model = DSVT(cfg["d_model"][0], channels=list(cfg["d_model"]), num_heads=list(cfg["nhead"]),
                 ffn_channels=list(cfg["dim_feedforward"]), num_blocks=[n for _, n in cfg["set_info"]],
                 window_shape=[(wz, wy, wx) for wx, wy, wz in inp["window_shape"]],
                 set_size=[t for t, _ in cfg["set_info"]], hybrid_factor=(fz, fy, fx),
                 shift=[(sh[1][2], sh[1][1], sh[1][0]) for sh in inp["shifts_list"]],
                 pool_strides=[(sz, sy, sx) for sx, sy, sz in inp["downsample_stride"]])
    return model, (nz, ny, nx)


def official_backbone_cfg(case):
    """The case's official ``BACKBONE_3D`` config: ``info.json``'s effective one (backbone cases) or the
    ``MODEL.BACKBONE_3D`` of its OpenPCDet yaml (``config.txt``, detector cases)."""
    info = json.loads((case / "info.json").read_text())
    if "backbone_cfg" in info:
        return info["backbone_cfg"]
    return yaml.safe_load((case / "config.txt").read_text())["MODEL"]["BACKBONE_3D"]


def converted_model(case):
    """The case's DSVT with the checkpoint's ``backbone_3d.*`` converted by the framework (every tensor read,
    every pc3d tensor produced, shapes equal), in eval mode; and its grid."""
    model, grid = dsvt_from_official(official_backbone_cfg(case))
    state = load_official_state(case / "checkpoint.pth", "openpcdet")
    backbone = {k: v for k, v in state.items() if k.startswith("backbone_3d.")}
    host = _Detector(model)
    result = convert_state(backbone, host, "openpcdet", name=str(case))
    assert result.complete
    host.load_state_dict(result.state_dict, strict=True)
    return model.eval(), grid


def run_case(case, feats, coords, batch_size=2):
    model, grid = converted_model(case)
    stage_coords = []
    for pool in model.pools:
        pool.register_forward_hook(lambda _m, _a, out: stage_coords.append(out.coords))
    voxels = SparseVoxels(torch.from_numpy(feats), torch.from_numpy(coords).int(), grid, batch_size)
    with torch.no_grad():
        out = model(voxels)
    return out, stage_coords


def check_voxel_sets(ours, official, name):
    ours = np.unique(np.asarray(ours, dtype=np.int64), axis=0)
    official = np.unique(np.asarray(official, dtype=np.int64), axis=0)
    assert ours.shape == official.shape and np.array_equal(ours, official), f"{name}: voxel sets differ"


@pytest.mark.parametrize("name", VOXEL_CASES + PILLAR_CASES)
def test_backbone_equals_official(name, record_property):
    prefix = "dsvt_voxel_waymo" if name in VOXEL_CASES else "dsvt_pillar_waymo"
    case = require_case(prefix, name)
    data = load_case(case)
    out, stage_coords = run_case(case, data["input"]["voxel_features"], data["input"]["voxel_coords"])
    official = data["output"]
    for s, coords in enumerate(stage_coords, start=1):
        check_voxel_sets(coords.numpy(), official[f"voxel_coords_stage{s}"], f"{name} voxel_coords_stage{s}")
    assert len(stage_coords) == sum(k.startswith("voxel_coords_stage") for k in official)
    diff = assert_voxels_close(out.coords.numpy(), out.feats.numpy(), official["voxel_coords"],
                               official["voxel_features"], f"{name} voxel_features")
    record_property("max_abs_diff", diff)
    print(f"{name}: voxel_features max abs diff {diff:.3e} (max |official| "
          f"{np.abs(official['voxel_features']).max():.3f})")


def test_every_known_case_found_is_run():
    # The parametrised tests above name the cases; a case of a known prefix that none of them names would be
    # silently left out.
    known = set(VOXEL_CASES + PILLAR_CASES + [DETECTOR_CASE])
    found = {c.name for c in case_dirs("dsvt_voxel_waymo") + case_dirs("dsvt_pillar_waymo")}
    assert found <= known, f"cases no test runs: {sorted(found - known)}"


def small_case():
    return require_case("dsvt_voxel_waymo", "dsvt_voxel_waymo_small")


def _state(case):
    return dict(load_official_state(case / "checkpoint.pth", "openpcdet"))


class _Detector(torch.nn.Module):
    """The smallest host the conversion framework maps ``backbone_3d.*`` into."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone3d = backbone


def _detector(case):
    return _Detector(dsvt_from_official(official_backbone_cfg(case))[0])


def test_conversion_round_trips_through_the_framework():
    case = small_case()
    model = _detector(case)
    result = convert_state(_state(case), model, "openpcdet")
    assert result.converted_modules == ["backbone3d"] and result.complete
    model.load_state_dict(result.state_dict, strict=True)
    key = "backbone_3d.stage_1_reduction.pos_embedding"
    torch.testing.assert_close(model.backbone3d.pools[1].pos_embedding, _state(case)[key], rtol=0, atol=0)


def test_conversion_refuses_a_missing_tensor():
    case = small_case()
    state = _state(case)
    key = "backbone_3d.stage_2.0.encoder_list.1.norm.weight"
    del state[key]
    with pytest.raises(CheckpointConversionError, match=key.replace(".", r"\.") + ".*is missing"):
        convert_state(state, _detector(case), "openpcdet")


def test_conversion_refuses_an_extra_tensor():
    case = small_case()
    state = _state(case)
    state["backbone_3d.stage_3.0.encoder_list.2.norm.weight"] = torch.ones(16)
    with pytest.raises(CheckpointConversionError, match=r"no target.*backbone_3d\.stage_3\.0\.encoder_list\.2"):
        convert_state(state, _detector(case), "openpcdet")


def test_conversion_refuses_a_misshaped_tensor():
    case = small_case()
    state = _state(case)
    key = "backbone_3d.input_layer.posembed_layers.3.0.1.position_embedding_head.0.weight"
    state[key] = torch.zeros(16, 3)  # the last stage's embedding is 2-D: (16, 2)
    with pytest.raises(CheckpointConversionError,
                       match=r"backbone3d\.stages\.3\.0\.pos_embeds\.1\.net\.0\.weight.*\(16, 3\).*\(16, 2\)"):
        convert_state(state, _detector(case), "openpcdet")


def test_conversion_refuses_options_without_official_counterpart():
    case = small_case()
    model, _ = dsvt_from_official(official_backbone_cfg(case))
    model.position_by_layer = False
    with pytest.raises(CheckpointConversionError, match="position_by_layer=False"):
        model.convert_official_state({}, "openpcdet")


# The options that hold the released code's behaviour, each shown to be live.

def test_window_configuration_counter_runs_across_stages():
    case = small_case()
    model, _ = dsvt_from_official(official_backbone_cfg(case))
    assert model.block_configs() == [[0], [1], [0], [1]]  # DSVT-V: stages 1 and 3 use the shifted windows
    assert DSVT(8, channels=16, num_heads=2, num_blocks=4).block_configs() == [[0, 1, 0, 1]]
    model.alternate_across_stages = False
    assert model.block_configs() == [[0], [0], [0], [0]]
    # The released weights need the counter: restarting it in each stage moves the output far off.
    data = load_case(case)
    converted, grid = converted_model(case)
    voxels = SparseVoxels(torch.from_numpy(data["input"]["voxel_features"]),
                          torch.from_numpy(data["input"]["voxel_coords"]).int(), grid, 2)
    with torch.no_grad():
        official_order = converted(voxels).feats
        converted.alternate_across_stages = False
        restarted = converted(voxels).feats
    assert (official_order - restarted).abs().max() > 0.1


def test_window_offsets_are_centred_in_window_units():
    coords = torch.tensor([[0, 3, 7, 13], [1, 0, 0, 0]], dtype=torch.int32)
    # x: (13 + 6) mod 12 - 6 = 1; y: (7 + 6) mod 12 - 6 = -5; z: 3 mod 8 - 4 = -1.
    torch.testing.assert_close(window_offsets(coords, (8, 12, 12), (0, 6, 6), 3),
                               torch.tensor([[1.0, -5.0, -1.0], [0.0, 0.0, -4.0]]))
    torch.testing.assert_close(window_offsets(coords, (1, 24, 24), (0, 6, 6), 2),
                               torch.tensor([[7.0, 1.0], [-6.0, -6.0]]))


@pytest.mark.parametrize("by_layer", [True, False])
def test_layer_i_takes_configuration_i_position_embedding(by_layer):
    # DSVT-P, two blocks (config 0, then config 1 = 12 x 12 windows shifted by (3, 3)). Record what each
    # position MLP is fed: with position_by_layer (released code) MLP i of every block takes config i's
    # offsets; without, the block's one MLP takes its own configuration's offsets.
    torch.manual_seed(0)
    model = DSVT(8, channels=16, num_heads=2, ffn_channels=32, num_blocks=2, window_shape=(6, 6), set_size=8,
                 shift=(0, 3, 3), position_by_layer=by_layer).eval()
    fed = {}
    for b, block in enumerate(model.stages[0]):
        assert len(block.pos_embeds) == (2 if by_layer else 1)
        for i, mlp in enumerate(block.pos_embeds):
            mlp.register_forward_pre_hook(lambda _m, args, key=(b, i): fed.setdefault(key, []).append(args[0]))
    g = torch.Generator().manual_seed(1)
    cells = torch.randperm(24 * 24, generator=g)[:60]
    coords = torch.stack([torch.zeros_like(cells), torch.zeros_like(cells), cells // 24, cells % 24], 1).int()
    with torch.no_grad():
        model(SparseVoxels(torch.randn(60, 8, generator=g), coords, (1, 24, 24), 1))
    config = [window_offsets(coords, (1, 6, 6), (0, 0, 0), 2), window_offsets(coords, (1, 12, 12), (0, 3, 3), 2)]
    for (b, i), inputs in fed.items():
        assert len(inputs) == 1
        torch.testing.assert_close(inputs[0], config[i if by_layer else b % 2])
    assert len(fed) == (4 if by_layer else 2)


def test_pooling_query_counts_empty_slots_as_zero():
    # One pillar of four z slots holding a single voxel with negative features: the max over the slots
    # (the query) is the empty slots' zero, and all four slots are keys (no mask).
    torch.manual_seed(0)
    pool = StagePooling(8, (4, 1, 1), num_heads=2).eval()
    seen = {}
    pool.attn.register_forward_pre_hook(lambda _m, args, kwargs: seen.update(q=args[0], k=args[1], kw=kwargs),
                                        with_kwargs=True)
    feats = -torch.rand(1, 8) - 0.5
    voxels = SparseVoxels(feats, torch.tensor([[0, 2, 3, 4]], dtype=torch.int32), (4, 6, 6), 1)
    with torch.no_grad():
        out = pool(voxels)
    assert torch.equal(out.coords, torch.tensor([[0, 0, 3, 4]], dtype=torch.int32)) and out.spatial_shape == (1, 6, 6)
    assert torch.equal(seen["q"], torch.zeros(1, 1, 8))
    assert seen["k"].shape == (1, 4, 8) and seen["kw"].get("key_padding_mask") is None
    torch.testing.assert_close(seen["k"][0, 2], feats[0] + pool.pos_embedding[2])  # z = 2 sits in slot 2
    torch.testing.assert_close(seen["k"][0, 0], pool.pos_embedding[0])


# The paper configs' backbones are the released ones: the same structure as the released yaml's BACKBONE_3D
# (always), and the same function on the full golden cases (when ../shared has them).

ROOT = Path(__file__).resolve().parents[1]
# BACKBONE_3D of Haiyang-W/DSVT tools/cfgs/dsvt_models/dsvt_plain_1f_onestage.yaml / dsvt_3D_1f_onestage.yaml.
OFFICIAL_YAML = {
    "dsvt_pillar_waymo": dict(
        INPUT_LAYER=dict(sparse_shape=[468, 468, 1], downsample_stride=[], d_model=[192], set_info=[[36, 4]],
                         window_shape=[[12, 12, 1]], hybrid_factor=[2, 2, 1], shifts_list=[[[0, 0, 0], [6, 6, 0]]],
                         normalize_pos=False),
        block_name=["DSVTBlock"], set_info=[[36, 4]], d_model=[192], nhead=[8], dim_feedforward=[384], dropout=0.0,
        activation="gelu"),
    "dsvt_voxel_waymo": dict(
        INPUT_LAYER=dict(sparse_shape=[468, 468, 32], downsample_stride=[[1, 1, 4], [1, 1, 4], [1, 1, 2]],
                         d_model=[192] * 4, set_info=[[48, 1]] * 4,
                         window_shape=[[12, 12, 32], [12, 12, 8], [12, 12, 2], [12, 12, 1]], hybrid_factor=[2, 2, 1],
                         shifts_list=[[[0, 0, 0], [6, 6, 0]]] * 4, normalize_pos=False),
        block_name=["DSVTBlock"] * 4, set_info=[[48, 1]] * 4, d_model=[192] * 4, nhead=[8] * 4,
        dim_feedforward=[384] * 4, dropout=0.0, activation="gelu", reduction_type="attention"),
}
FULL_CASE = {"dsvt_pillar_waymo": DETECTOR_CASE, "dsvt_voxel_waymo": "dsvt_voxel_waymo"}


def config_model(name):
    from mmengine.config import Config

    from pc3d.registry import MODELS

    cfg = Config.fromfile(str(ROOT / "configs" / "waymo" / f"{name}.py"))
    return cfg, MODELS.build(cfg.model.backbone3d)


def _grid(cfg):
    r, v = cfg.point_cloud_range, cfg.model.voxelizer.voxel_size
    return tuple(round((r[a + 3] - r[a]) / v[a]) for a in (2, 1, 0))


@pytest.mark.parametrize("name", sorted(OFFICIAL_YAML))
def test_paper_config_backbone_is_the_released_one(name):
    cfg, ours = config_model(name)
    official, grid = dsvt_from_official(OFFICIAL_YAML[name])
    assert _grid(cfg) == grid
    for attr in ("channels", "num_blocks", "set_size", "hybrid_factor", "pool_strides", "position_by_layer",
                 "alternate_across_stages"):
        assert getattr(ours, attr) == getattr(official, attr), attr
    for s in range(len(ours.stages)):
        assert [ours._config(s, c, grid) for c in (0, 1)] == [official._config(s, c, grid) for c in (0, 1)]
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in official.state_dict().items()}


@pytest.mark.parametrize("name", sorted(FULL_CASE))
def test_paper_config_backbone_computes_the_official_function(name, record_property):
    case = require_case(name.rsplit("_waymo", 1)[0] + "_waymo", FULL_CASE[name])
    _, model = config_model(name)
    state = load_official_state(case / "checkpoint.pth", "openpcdet")
    backbone = {k[len("backbone_3d."):]: v for k, v in state.items() if k.startswith("backbone_3d.")}
    model.load_state_dict(model.convert_official_state(backbone, "openpcdet"), strict=True)
    with np.load(case / "input.npz") as inp, np.load(case / "output.npz") as out:
        if name == "dsvt_voxel_waymo":
            feats, coords = inp["voxel_features"], inp["voxel_coords"]
            off_feats, off_coords = out["voxel_features"], out["voxel_coords"]
        else:
            feats, coords = out["vfe_voxel_features"], out["vfe_voxel_coords"]
            off_feats, off_coords = out["backbone3d_voxel_features"], out["backbone3d_voxel_coords"]
    cfg, _ = config_model(name)
    voxels = SparseVoxels(torch.from_numpy(feats), torch.from_numpy(coords).int(), _grid(cfg), 2)
    with torch.no_grad():
        result = model.eval()(voxels)
    diff = assert_voxels_close(result.coords.numpy(), result.feats.numpy(), off_coords, off_feats,
                               f"{FULL_CASE[name]} ({name} config) backbone output")
    record_property("max_abs_diff", diff)
    print(f"{FULL_CASE[name]} through configs/waymo/{name}.py: max abs diff {diff:.3e} "
          f"(max |official| {np.abs(off_feats).max():.3f})")
