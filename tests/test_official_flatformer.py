"""FlatFormer against the official code (mit-han-lab/flatformer @ 31dc5a92, mmdet3d ``FlatFormer`` middle encoder).

Golden cases ``flatformer_waymo*`` (tests/official_golden.py): official weights in the mmdet3d container, real-scan
pillars with N(0, 1) features, and the official outputs. The weights go through
``FlatFormer.convert_official_state`` (and, for the paper-scale case, through the whole Waymo detector config), the
outputs are matched by voxel coordinates at the shared tolerance.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pc3d.apis.convert import CheckpointConversionError, convert_state, load_official_state
from pc3d.models.backbones3d import FlatFormer
from pc3d.models.backbones3d.flatformer import PARTITIONS, flatformer_position
from pc3d.ops import flat_window_partition
from pc3d.models.structures import SparseVoxels
from tests.official_golden import assert_voxels_close, case_dirs, load_case, require_case

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "flatformer_waymo"
KNOWN = ["flatformer_waymo", "flatformer_waymo_small"]
CASES = sorted(set(KNOWN) | {case.name for case in case_dirs(PREFIX)})
WAYMO_CONFIG = ROOT / "configs" / "flatformer" / "flatformer_waymo.py"


def official_encoder_config(case: Path) -> dict:
    """The official middle encoder's effective arguments (``info.json``)."""
    return json.loads((case / "info.json").read_text())["middle_encoder"]


def build_like_official(cfg: dict) -> FlatFormer:
    """A pc3d FlatFormer with the official encoder's arguments (mmdet3d's window/sparse shapes are (x, y, z))."""
    wx, wy = cfg["window_shape"][:2]
    return FlatFormer(cfg["in_channels"], num_heads=cfg["num_heads"], num_blocks=cfg["num_blocks"],
                      window_shape=(wy, wx), group_size=cfg["group_size"],
                      pos_temperature=cfg["pos_temperature"]).eval()


def stripped(state: dict, prefix: str = "middle_encoder.") -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def run_backbone(model: FlatFormer, data: dict, cfg: dict):
    coords = torch.from_numpy(data["input"]["voxel_coords"])
    feats = torch.from_numpy(data["input"]["voxel_features"])
    sx, sy, sz = cfg["sparse_shape"]
    with torch.no_grad():
        out = model(SparseVoxels(feats, coords, (sz, sy, sx), int(coords[:, 0].max()) + 1))
    return out.coords.numpy(), out.feats.numpy()


@pytest.mark.parametrize("name", CASES)
def test_flatformer_equals_official(name):
    case = require_case(PREFIX, name)
    cfg = official_encoder_config(case)
    assert cfg["activation"] == "gelu" and not cfg["normalize_pos"], cfg  # what pc3d's FlatFormer computes
    data = load_case(case)
    model = build_like_official(cfg)
    official = stripped(load_official_state(data["checkpoint"], "flatformer"))
    model.load_state_dict(model.convert_official_state(official, "flatformer"), strict=True)
    coords, feats = run_backbone(model, data, cfg)
    out = data["output"]
    b, _, h, w = (int(v) for v in out["canvas_shape"])
    assert (b, h, w) == (int(coords[:, 0].max()) + 1, cfg["output_shape"][0], cfg["output_shape"][1])
    diff = assert_voxels_close(coords, feats, out["voxel_coords"], out["voxel_features"], f"{name} voxel_features")
    print(f"{name}: voxel_features max abs diff {diff:.3e}")


def test_waymo_config_backbone_converts_and_equals_official():
    # The paper-scale case through the Waymo detector config and the conversion framework: the checkpoint holds
    # only the middle encoder, which lands on backbone3d completely; every other module is named as unconverted.
    from pc3d.apis._config import load_config
    from pc3d.registry import MODELS

    case = require_case(PREFIX, "flatformer_waymo")
    data = load_case(case)
    model = MODELS.build(load_config(str(WAYMO_CONFIG)).model).eval()
    result = convert_state(load_official_state(data["checkpoint"], "flatformer"), model, "flatformer")
    assert result.converted_modules == ["backbone3d"]
    assert "backbone3d" not in result.unconverted_modules and "head" in result.unconverted_modules
    model.load_state_dict(result.state_dict, strict=False)
    coords, feats = run_backbone(model.backbone3d, data, official_encoder_config(case))
    out = data["output"]
    assert_voxels_close(coords, feats, out["voxel_coords"], out["voxel_features"], "flatformer_waymo via config")


def test_official_last_group_rule_matters():
    # The same converted weights with the partition's other fill rule (the short last group padded by its own
    # voxels, masked) miss the official output: the golden comparison does see the rule.
    case = require_case(PREFIX, "flatformer_waymo_small")
    cfg, data = official_encoder_config(case), load_case(case)
    model = build_like_official(cfg)
    model.load_state_dict(model.convert_official_state(
        stripped(load_official_state(data["checkpoint"], "flatformer")), "flatformer"))
    coords, feats = run_backbone(model, data, cfg)

    def repeat_partitions(coords, spatial_shape):
        parts = [flat_window_partition(coords, spatial_shape, model.window_shape, model.group_size, axis=axis,
                                       shift=shift, last_group="repeat") for axis, shift in PARTITIONS]
        return [(p.indices, p.inverse, p.padding_mask) for p in parts]

    model.partitions = repeat_partitions
    _, feats_repeat = run_backbone(model, data, cfg)
    out = data["output"]["voxel_features"]
    assert np.abs(feats - out).max() < 1e-4 < np.abs(feats_repeat - out).max()


def test_position_encoding_interleaves_sin_and_cos_per_frequency():
    coords = torch.tensor([[0, 0, 7, 3], [1, 0, 400, 250]], dtype=torch.int32)
    pe = flatformer_position(coords, 128)
    assert pe.shape == (2, 128)
    for row, (y, x) in enumerate(((7, 3), (400, 250))):
        for k in range(32):
            f = 10000.0 ** (2 * k / 64)
            expected = [np.sin(x / f), np.cos(x / f)]
            np.testing.assert_allclose(pe[row, 2 * k:2 * k + 2].numpy(), expected, atol=2e-5)
            np.testing.assert_allclose(pe[row, 64 + 2 * k:64 + 2 * k + 2].numpy(), [np.sin(y / f), np.cos(y / f)],
                                       atol=2e-5)
    # A width that is not a multiple of 4: (C // 4) * 2 channels per axis, the rest zero.
    pe = flatformer_position(coords, 10)
    assert torch.equal(pe[:, 8:], torch.zeros(2, 2))
    torch.testing.assert_close(pe[:, :4], flatformer_position(coords, 8)[:, :4])


def small_official_state():
    case = require_case(PREFIX, "flatformer_waymo_small")
    return case, stripped(load_official_state(case / "checkpoint.pth", "flatformer"))


def test_conversion_refuses_bad_checkpoints_naming_the_key(tmp_path):
    case, official = small_official_state()
    model = build_like_official(official_encoder_config(case))
    as_checkpoint = lambda state: {"middle_encoder." + k: v for k, v in state.items()}  # noqa: E731

    # A tensor missing.
    state = dict(official)
    del state["block_list.0.block.2.fc1.weight"]
    with pytest.raises(CheckpointConversionError, match=r"'middle_encoder\.block_list\.0\.block\.2\.fc1\.weight'"):
        convert_state(as_checkpoint(state), _Detector(model), "flatformer")
    # A tensor with no place (a second block this model does not have).
    state = dict(official, **{"block_list.1.block.0.fc1.weight": official["block_list.0.block.0.fc1.weight"]})
    with pytest.raises(CheckpointConversionError, match=r"middle_encoder\.block_list\.1\.block\.0\.fc1\.weight"):
        convert_state(as_checkpoint(state), _Detector(model), "flatformer")
    # Another width: the attention's in_proj is named.
    wide = FlatFormer(64, num_heads=2, num_blocks=1)
    with pytest.raises(CheckpointConversionError, match=r"block_list\.0\.block\.0\.attn\.attn\.in_proj_weight"):
        convert_state(as_checkpoint(official), _Detector(wide), "flatformer")
    # Another FFN shape: the framework names the pc3d tensor whose shape differs.
    state = dict(official, **{"block_list.0.block.1.fc2.bias": torch.zeros(5)})
    with pytest.raises(CheckpointConversionError, match=r"layers\.1\.ffn\.2\.bias"):
        convert_state(as_checkpoint(state), _Detector(model), "flatformer")
    # Another source.
    with pytest.raises(CheckpointConversionError, match="'flatformer'"):
        model.convert_official_state(official, "openpcdet")
    # A file whose value is not a tensor, and a truncated file: named, nothing executed.
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"middle_encoder.block_list.0.block.0.fc1.weight": [1, 2]}}, bad)
    with pytest.raises(CheckpointConversionError, match=r"bad\.pth: key 'middle_encoder\.block_list\.0\.block\.0"
                                                        r"\.fc1\.weight' holds a list"):
        load_official_state(bad, "flatformer")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((case / "checkpoint.pth").read_bytes()[:1000])
    with pytest.raises(CheckpointConversionError, match=r"truncated\.pth: not a readable torch checkpoint"):
        load_official_state(truncated, "flatformer")


class _Detector(torch.nn.Module):
    """A stand-in detector holding only ``backbone3d`` (what the conversion framework maps middle_encoder to)."""

    def __init__(self, backbone: FlatFormer):
        super().__init__()
        self.backbone3d = backbone


@pytest.mark.parametrize("residual", [False, True])
def test_second_backbone_residual_adds_each_same_shape_layers_input(residual):
    # The official FlatFormer detector's SECOND (residual=True): x = f(x) + x for every conv-BN-ReLU whose output has
    # its input's shape. With zero conv weights and BatchNorm at bias b (eval, running mean 0, var 1), each layer
    # outputs the constant relu(b) = b: a stage of 1 + n layers then gives (n + 1) b with the residual, b without.
    from pc3d.models.backbones2d import SECONDBackbone

    net = SECONDBackbone(4, out_channels=(6, 6), layer_nums=(3, 2), layer_strides=(1, 2), residual=residual).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.zero_()
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
                m.weight.fill_(1.0)
                m.bias.fill_(0.5)
        outs = net(torch.randn(2, 4, 8, 8))
    assert [tuple(o.shape) for o in outs] == [(2, 6, 8, 8), (2, 6, 4, 4)]
    # Stage 1's opening conv changes the width (4 -> 6): no residual there; stage 2's changes the size.
    expected = (4 * 0.5, 3 * 0.5) if residual else (0.5, 0.5)
    for out, value in zip(outs, expected):
        torch.testing.assert_close(out, torch.full_like(out, value))
