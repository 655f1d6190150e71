"""``tools/convert_checkpoint.py`` / ``pc3d.apis.convert_checkpoint``: official golden checkpoints round-trip into
pc3d checkpoints that ``pc3d.apis.init_model`` loads (strictly) and ``tools/test.py`` evaluates, and bad files
are refused with an error naming the file and the first offending key, without executing anything from them.

Round trips run for every golden case found (``PC3D_OFFICIAL_GOLDEN``, else ``../shared`` and the bundled
``*_small`` cases) whose pc3d module converts official weights: the whole DSVT-P detector, and the backbone-only
checkpoints (DSVT-P/V, FlatFormer, ScatterFormer; their other modules are reported as unconverted). Paper-size
cases convert into the paper configs; the ``*_small`` cases into those configs with the case's widths.
``tools/test.py`` then runs on a few generated frames with the model's range shrunk to +-20.48 m (no weight depends
on the range), so it stays quick.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from official_golden import case_dirs
from pc3d.apis import convert_checkpoint
from pc3d.apis.convert import CheckpointConversionError, convert_state, load_official_state

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SMALL_RANGE = [-20.48, -20.48, -2.0, 20.48, 20.48, 4.0]


def _dsvt_backbone(info):
    """pc3d DSVT arguments of an official ``BACKBONE_3D`` config (x, y, z orders become z, y, x)."""
    cfg = info["backbone_cfg"]
    inp = cfg["INPUT_LAYER"]
    fx, fy, fz = inp["hybrid_factor"]
    return dict(_delete_=True, type="DSVT", in_channels=cfg["d_model"][0], channels=list(cfg["d_model"]),
                num_heads=list(cfg["nhead"]), ffn_channels=list(cfg["dim_feedforward"]),
                num_blocks=[n for _, n in cfg["set_info"]],
                window_shape=[(wz, wy, wx) for wx, wy, wz in inp["window_shape"]],
                set_size=[t for t, _ in cfg["set_info"]], hybrid_factor=(fz, fy, fx),
                shift=[(sh[1][2], sh[1][1], sh[1][0]) for sh in inp["shifts_list"]],
                pool_strides=[(sz, sy, sx) for sx, sy, sz in inp["downsample_stride"]])


def _dsvt_small(info):
    c = info["backbone_cfg"]["d_model"][-1]
    return dict(voxel_encoder=dict(num_filters=(c, c)), backbone3d=_dsvt_backbone(info),
                bev=dict(num_bev_features=c), backbone2d=dict(in_channels=c))


def _scatterformer_small(info):
    c = info["model_cfg"]["FEATURE_DIM"]
    c_in = info["input_channels"]
    return dict(voxel_encoder=dict(feat_channels=(c_in, c_in)),
                backbone3d=dict(in_channels=c_in, channels=c, window_size=info["model_cfg"]["WIN_SIZE"]),
                bev=dict(in_channels=c), backbone2d=dict(in_channels=c))


def _flatformer_small(info):
    m = info["middle_encoder"]
    c = m["in_channels"]
    return dict(voxel_encoder=dict(feat_channels=(c, c)),
                backbone3d=dict(in_channels=c, channels=c, num_heads=m["num_heads"], num_blocks=m["num_blocks"],
                                ffn_channels=2 * c),
                bev=dict(in_channels=c), backbone2d=dict(in_channels=c))


# case -> (folder prefix, --from, paper config, pc3d module that must convert, small-case model overrides)
ROUND_TRIPS = {
    "dsvt_pillar_waymo_detector": ("dsvt_pillar_waymo", "openpcdet", "dsvt_pillar_waymo.py", "DSVT", None),
    "dsvt_pillar_waymo_small": ("dsvt_pillar_waymo", "openpcdet", "dsvt_pillar_waymo.py", "DSVT", _dsvt_small),
    "dsvt_voxel_waymo": ("dsvt_voxel_waymo", "openpcdet", "dsvt_voxel_waymo.py", "DSVT", None),
    "dsvt_voxel_waymo_small": ("dsvt_voxel_waymo", "openpcdet", "dsvt_voxel_waymo.py", "DSVT", _dsvt_small),
    "scatterformer_waymo": ("scatterformer_waymo", "scatterformer", "scatterformer_waymo.py", "ScatterFormer", None),
    "scatterformer_waymo_small": ("scatterformer_waymo", "scatterformer", "scatterformer_waymo.py", "ScatterFormer",
                                  _scatterformer_small),
    "flatformer_waymo": ("flatformer_waymo", "flatformer", "flatformer_waymo.py", "FlatFormer", None),
    "flatformer_waymo_small": ("flatformer_waymo", "flatformer", "flatformer_waymo.py", "FlatFormer",
                               _flatformer_small),
}


def _found():
    out = []
    for name, (prefix, *_rest) in ROUND_TRIPS.items():
        out += [c for c in case_dirs(prefix) if c.name == name]
    return out


def _params():
    """The found cases; the paper-size ones (only under ../shared, about a minute each on 2 cores) are slow."""
    return [pytest.param(c, id=c.name, marks=() if c.name.endswith("_small") else pytest.mark.slow) for c in _found()]


def _converts(class_name):
    from pc3d.models import backbones3d

    return hasattr(getattr(backbones3d, class_name, None), "convert_official_state")


def _merge(base, override):
    for key, value in override.items():
        if isinstance(value, dict) and not value.get("_delete_") and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = {k: v for k, v in value.items() if k != "_delete_"} if isinstance(value, dict) else value


def _shrink(model):
    """The model's range to SMALL_RANGE (every ``pc_range``; OpenPCDet scatters' ``input_shape``)."""
    for module in model.values():
        if isinstance(module, dict):
            if "pc_range" in module:
                module["pc_range"] = list(SMALL_RANGE)
            if module.get("type") == "PointPillarScatter3d":
                vx, vy = model["voxelizer"]["voxel_size"][:2]
                module["input_shape"] = (round(40.96 / vx), round(40.96 / vy), module["input_shape"][2])


def write_config(path, name, case, data_root=None):
    """The pc3d config a case converts into (paper config, small widths for ``*_small``); with ``data_root`` the
    range shrunk and the test set the generated frames there. Returns the file written."""
    from mmengine.config import Config

    _prefix, _source, paper, _cls, small = ROUND_TRIPS[name]
    cfg = Config.fromfile(str(ROOT / "configs" / "waymo" / paper))
    model = cfg.to_dict()["model"]
    if small is not None:
        _merge(model, small(json.loads((case / "info.json").read_text())))
    text = f"_base_ = [{str(ROOT / 'configs' / 'waymo' / paper)!r}]\n"
    if data_root is not None:
        _shrink(model)
        pipe = [dict(type="RangeFilter", point_cloud_range=SMALL_RANGE)]
        text += f"""
test_dataloader = dict(_delete_=True, batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
                       sampler=dict(type='DefaultSampler', shuffle=False), collate_fn=dict(type='pc3d_collate_batch'),
                       dataset=dict(type='SyntheticDataset', data_root={str(data_root)!r}, split='val',
                                    pipeline={pipe!r}, test_mode=True))
val_dataloader = test_dataloader
test_evaluator = dict(_delete_=True, type='WaymoMetric')
val_evaluator = test_evaluator
"""
    text += f"model = dict(_delete_=True, **{model!r})\n"
    path.write_text(text)
    return path


def cli(tmp_path, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *map(str, args)], cwd=tmp_path, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("case", _params())
def test_cli_round_trip_loads_and_runs(case, tmp_path):
    from engine_utils import make_tiny_dataset

    from pc3d.apis import init_model

    name = case.name
    _prefix, source, _paper, cls, _small = ROUND_TRIPS[name]
    if not _converts(cls):
        pytest.skip(f"pc3d's {cls} has no convert_official_state: {name}'s backbone weights have no target yet")
    cfg = write_config(tmp_path / "cfg.py", name, case)
    dst = tmp_path / "converted.pth"
    proc = cli(tmp_path, ROOT / "tools" / "convert_checkpoint.py", case / "checkpoint.pth", dst, "--from", source,
               "--config", cfg)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    whole = name == "dsvt_pillar_waymo_detector"
    assert "into " in proc.stdout and "backbone3d" in proc.stdout
    assert ("modules left without weights" in proc.stdout) != whole, proc.stdout
    saved = torch.load(dst, map_location="cpu", weights_only=True)
    assert saved["meta"]["source"] == source and (saved["meta"]["unconverted_modules"] == []) == whole
    # init_model loads it strictly, and every converted tensor is the official one mapped by the module.
    model = init_model(str(cfg), str(dst))
    result = convert_state(load_official_state(case / "checkpoint.pth", source), model, source)
    state = model.state_dict()
    for key, value in result.state_dict.items():
        assert torch.equal(state[key], value), key
    official_numel = sum(v.numel() for k, v in load_official_state(case / "checkpoint.pth", source).items()
                         if k != "global_step")
    assert sum(v.numel() for v in result.state_dict.values()) == official_numel
    # tools/test.py evaluates it (range shrunk to the generated frames').
    data_root = make_tiny_dataset(tmp_path / "data", n_train=1, n_val=2)
    test_cfg = write_config(tmp_path / "cfg_test.py", name, case, data_root)
    proc = cli(tmp_path, ROOT / "tools" / "test.py", test_cfg, dst, "--work-dir", tmp_path / "work")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "mAP_L1" in proc.stdout + proc.stderr


def test_python_api_matches_the_cli_and_reports_partial_checkpoints(tmp_path):
    case = next((c for c in _found() if c.name == "dsvt_pillar_waymo_small"), None)
    if case is None:
        pytest.skip("golden case dsvt_pillar_waymo_small absent (it ships in tests/data/official_models)")
    cfg = write_config(tmp_path / "cfg.py", case.name, case)
    model, result = convert_checkpoint(case / "checkpoint.pth", str(cfg), "openpcdet", dst=tmp_path / "api.pth")
    assert result.converted_modules == ["backbone3d"] and not result.complete
    assert result.unconverted_modules == ["backbone2d", "head", "voxel_encoder"]
    proc = cli(tmp_path, ROOT / "tools" / "convert_checkpoint.py", case / "checkpoint.pth", tmp_path / "cli.pth",
               "--from", "openpcdet", "--config", cfg)
    assert "modules left without weights (initialised as the config builds them): backbone2d, head, " \
           "voxel_encoder" in proc.stdout
    api = torch.load(tmp_path / "api.pth", weights_only=True)["state_dict"]
    via_cli = torch.load(tmp_path / "cli.pth", weights_only=True)["state_dict"]
    assert set(api) == set(via_cli) == set(model.state_dict())
    for key in api:
        if key.startswith("backbone3d."):
            assert torch.equal(api[key], via_cli[key]), key


# ------------------------------------------------------------------------------------------------- bad input
@pytest.fixture()
def small_dsvt(tmp_path):
    case = next((c for c in _found() if c.name == "dsvt_pillar_waymo_small"), None)
    if case is None:
        pytest.skip("golden case dsvt_pillar_waymo_small absent (it ships in tests/data/official_models)")
    return case, write_config(tmp_path / "cfg.py", case.name, case)


def _refused(tmp_path, src, cfg, source="openpcdet"):
    dst = tmp_path / "never.pth"
    proc = cli(tmp_path, ROOT / "tools" / "convert_checkpoint.py", src, dst, "--from", source, "--config", cfg)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not dst.exists()
    with pytest.raises(CheckpointConversionError) as err:
        convert_checkpoint(src, str(cfg), source)
    assert str(err.value) in proc.stderr
    return str(err.value)


def test_refuses_a_checkpoint_of_another_model(small_dsvt, tmp_path):
    _case, cfg = small_dsvt
    other = next((c for c in case_dirs("scatterformer_waymo") if c.name == "scatterformer_waymo_small"), None)
    if other is None:
        pytest.skip("golden case scatterformer_waymo_small absent")
    message = _refused(tmp_path, other / "checkpoint.pth", cfg)
    assert "checkpoint.pth" in message and "backbone_3d." in message  # names the file and an official key


def test_refuses_a_truncated_file(small_dsvt, tmp_path):
    case, cfg = small_dsvt
    bad = tmp_path / "truncated.pth"
    bad.write_bytes((case / "checkpoint.pth").read_bytes()[:2000])
    assert "truncated.pth" in _refused(tmp_path, bad, cfg)


def test_refuses_a_non_tensor_entry(small_dsvt, tmp_path):
    case, cfg = small_dsvt
    state = dict(load_official_state(case / "checkpoint.pth", "openpcdet"))
    first = next(iter(state))
    state[first] = "not a tensor"
    bad = tmp_path / "strings.pth"
    torch.save({"model_state": state, "epoch": 0}, bad)
    message = _refused(tmp_path, bad, cfg)
    assert "strings.pth" in message and f"'{first}'" in message and "str" in message


class _Payload:
    """Pickles as a call that creates a marker file: a checkpoint that would run code when unpickled fully."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_refuses_a_pickle_with_a_global_and_runs_nothing(small_dsvt, tmp_path):
    _case, cfg = small_dsvt
    marker = tmp_path / "executed"
    bad = tmp_path / "malicious.pth"
    torch.save({"model_state": {"vfe.x": torch.zeros(1)}, "payload": _Payload(marker)}, bad)
    message = _refused(tmp_path, bad, cfg)
    assert "malicious.pth" in message and "not a readable torch checkpoint" in message
    assert not marker.exists()


def test_refuses_a_checkpoint_of_another_source(small_dsvt, tmp_path):
    case, cfg = small_dsvt
    message = _refused(tmp_path, case / "checkpoint.pth", cfg, source="flatformer")
    assert "checkpoint.pth" in message and "'state_dict'" in message


def test_every_known_case_is_in_the_table():
    # A case of a known prefix that no round trip names would be silently left out.
    prefixes = {p for p, *_ in ROUND_TRIPS.values()}
    found = {c.name for p in prefixes for c in case_dirs(p)}
    unknown = found - set(ROUND_TRIPS)
    assert not unknown, f"golden cases without a round trip: {sorted(unknown)}"
