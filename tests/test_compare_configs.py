"""configs/compare: the detectors of the backbone comparison differ only in their 3D stage (and the
grid it runs on: 0.32 m pillars or the spconv baseline's 8-slice 3D grid)."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# name -> 3D stage (None: a control without one)
STAGES = {"spconv": "SparseConvBackbone", "flatformer": "FlatFormer", "dsvt_pillar": "DSVT",
          "scatterformer": "ScatterFormer", "flatformer_voxel": "FlatFormer", "dsvt_voxel": "DSVT",
          "scatterformer_voxel": "ScatterFormer", "pillar": None, "voxel_grid": None,
          "flatformer_voxel_id": "FlatFormer", "dsvt_voxel_id": "DSVT", "scatterformer_voxel_id": "ScatterFormer",
          "flatformer_voxel_id_z": "FlatFormer", "flatformer_voxel_id_cpe": "FlatFormer",
          "flatformer_voxel_id_full_cpe": "FlatFormer", "flatformer_voxel_id_cpe_per_layer": "FlatFormer",
          "scatterformer_voxel_id_full_cpe": "ScatterFormer", "dsvt_voxel_id_full_cpe": "DSVT",
          "scatterformer_voxel_id_slices": "ScatterFormer", "dsvt_voxel_id_one_stage_full_cpe": "DSVT",
          "flatformer_voxel_id_stem_full_cpe": "FlatFormer", "scatterformer_voxel_id_slices_stem": "ScatterFormer",
          "dsvt_voxel_id_one_stage_full_cpe_stem": "DSVT", "dsvt_voxel_id_one_stage_full_cpe_stem_set144": "DSVT",
          "scatterformer_voxel_slices_stem": "ScatterFormer",
          "scatterformer_voxel_id_slices_stem_full_cpe": "ScatterFormer",
          "flatformer_voxel_id_full_cpe_lr15": "FlatFormer",
          "scatterformer_voxel_id_slices_stem_full_cpe_lr15": "ScatterFormer",
          "flatformer_voxel_id_full_cpe_lr60": "FlatFormer",
          "scatterformer_voxel_id_slices_stem_full_cpe_lr60": "ScatterFormer",
          "flatformer_voxel_id_full_cpe_cos": "FlatFormer", "flatformer_voxel_id_full_cpe_cos_lr60": "FlatFormer",
          "flatformer_voxel_id_full_cpe_mlp": "FlatFormer", "flatformer_voxel_id_full_cpe_cos_bn": "FlatFormer",
          "flatformer_voxel_id_stem_cpe2_mlp": "FlatFormer", "flatformer_voxel_id_stem_cpe2_mlp_cos": "FlatFormer"}
# Position-encoding, stem, set-size and layer variants: name -> (the config it extends, the only backbone
# options it adds or changes).
FULL_CPE = {"cpe_kernel": (3, 3, 3), "cpe_depthwise": False}
VARIANTS = {"flatformer_voxel_id_z": ("flatformer_voxel_id", {"position_axes": ("x", "y", "z")}),
            "flatformer_voxel_id_cpe": ("flatformer_voxel_id", {"cpe_kernel": (3, 3, 3)}),
            "flatformer_voxel_id_full_cpe": ("flatformer_voxel_id", FULL_CPE),
            "flatformer_voxel_id_cpe_per_layer": ("flatformer_voxel_id",
                                                  {"cpe_kernel": (3, 3, 3), "cpe_every_layer": True}),
            "scatterformer_voxel_id_full_cpe": ("scatterformer_voxel_id", FULL_CPE),
            "dsvt_voxel_id_full_cpe": ("dsvt_voxel_id", FULL_CPE),
            "flatformer_voxel_id_stem_full_cpe": ("flatformer_voxel_id_full_cpe", {"stem_kernel": (3, 3, 3)}),
            "scatterformer_voxel_id_slices_stem": ("scatterformer_voxel_id_slices", {"stem_kernel": (3, 3, 3)}),
            "dsvt_voxel_id_one_stage_full_cpe_stem": ("dsvt_voxel_id_one_stage_full_cpe", {"stem_kernel": (3, 3, 3)}),
            "dsvt_voxel_id_one_stage_full_cpe_stem_set144": ("dsvt_voxel_id_one_stage_full_cpe_stem",
                                                             {"set_size": 144}),
            "scatterformer_voxel_slices_stem": ("scatterformer_voxel_id_slices_stem", {"identity_init": False}),
            "scatterformer_voxel_id_slices_stem_full_cpe": ("scatterformer_voxel_id_slices_stem", FULL_CPE),
            "flatformer_voxel_id_full_cpe_cos": ("flatformer_voxel_id_full_cpe", {"cosine_attention": True}),
            "flatformer_voxel_id_full_cpe_mlp": ("flatformer_voxel_id_full_cpe",
                                                 {"position_encoding": "mlp", "position_axes": ("x", "y", "z")}),
            "flatformer_voxel_id_full_cpe_cos_bn": ("flatformer_voxel_id_full_cpe_cos", {"cpe_batchnorm": True}),
            "flatformer_voxel_id_stem_cpe2_mlp": ("flatformer_voxel_id_stem_full_cpe",
                                                  {"cpe_interval": 2, "position_encoding": "mlp",
                                                   "position_axes": ("x", "y", "z")}),
            "flatformer_voxel_id_stem_cpe2_mlp_cos": ("flatformer_voxel_id_stem_cpe2_mlp", {"cosine_attention": True})}
# Variants that hand all 8 z-slices x 64 channels to the BEV as FlatFormer does: name -> (the config it
# extends, the backbone options it changes).
ALL_SLICES = {"scatterformer_voxel_id_slices": ("scatterformer_voxel_id", {"pool_to_bev": False}),
              "dsvt_voxel_id_one_stage_full_cpe": ("dsvt_voxel_id_full_cpe",
                                                   {"window_shape": ((8, 12, 12),), "pool_strides": (),
                                                    "num_blocks": 2})}
# Learning-rate variants: name -> (the config it extends, its one-cycle peak rate). Same model, same iterations.
PEAK_LR = {"flatformer_voxel_id_full_cpe_lr15": ("flatformer_voxel_id_full_cpe", 1.5e-3),
           "scatterformer_voxel_id_slices_stem_full_cpe_lr15": ("scatterformer_voxel_id_slices_stem_full_cpe", 1.5e-3),
           "flatformer_voxel_id_full_cpe_lr60": ("flatformer_voxel_id_full_cpe", 6e-3),
           "scatterformer_voxel_id_slices_stem_full_cpe_lr60": ("scatterformer_voxel_id_slices_stem_full_cpe", 6e-3),
           "flatformer_voxel_id_full_cpe_cos_lr60": ("flatformer_voxel_id_full_cpe_cos", 6e-3)}
NAMES = tuple(STAGES)


def _plain(value):
    """A config value with its lists made tuples (at any depth), to compare with the literals above."""
    return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def _without_options(name, cfg, base_cfg, options):
    """The two configs' model dicts with ``options`` taken out of both backbones, after checking that ``cfg``
    sets each of them to its value there and that ``base_cfg`` has a different one (or none)."""
    variant, original = cfg.model.to_dict(), base_cfg.model.to_dict()
    changed = {key: variant["backbone3d"].pop(key) for key in options}
    assert {k: _plain(v) for k, v in changed.items()} == options, name
    assert all(_plain(original["backbone3d"].pop(k, None)) != v for k, v in options.items()), name
    return variant, original


def _load(name):
    from mmengine.config import Config

    return Config.fromfile(str(ROOT / "configs" / "compare" / f"{name}_synthetic.py"))


def test_equal_budget_and_same_detector_around_the_3d_stage():
    cfgs = {n: _load(n) for n in NAMES}
    ref = cfgs["spconv"]
    for name, cfg in cfgs.items():
        # Same data, schedule, optimiser and evaluation: the budget is equal by construction.
        for key in ("train_cfg", "param_scheduler", "optim_wrapper", "train_dataloader", "val_dataloader",
                    "val_evaluator", "point_cloud_range"):
            if key == "param_scheduler" and name in PEAK_LR:
                continue  # checked below: the peak rate is all that differs
            assert cfg[key] == ref[key], (name, key)
        m, r = cfg.model, ref.model
        assert m.head == r.head and m.neck == r.neck, name
        assert {k: v for k, v in m.backbone2d.items() if k != "in_channels"} == \
               {k: v for k, v in r.backbone2d.items() if k != "in_channels"}, name
        assert m.voxelizer.pc_range == r.voxelizer.pc_range and m.voxelizer.voxel_size[:2] == r.voxelizer.voxel_size[:2]
    assert {n: (c.model.get("backbone3d") or {}).get("type") for n, c in cfgs.items()} == STAGES
    # The 3D-grid variants run on the baseline's own voxels.
    for name in ("voxel_grid", "flatformer_voxel", "dsvt_voxel", "scatterformer_voxel"):
        assert cfgs[name].model.voxelizer.voxel_size == ref.model.voxelizer.voxel_size, name
        # The identity_init variants differ from their paper-layer configs in that flag only.
        if name != "voxel_grid":
            variant = cfgs[name + "_id"].model.to_dict()
            assert variant["backbone3d"].pop("identity_init") is True
            assert variant == cfgs[name].model.to_dict(), name
    # The position-encoding, stem, set-size and layer variants differ from the config they extend in their own
    # options only, and each of those options is set to something new.
    for name, (base, options) in VARIANTS.items():
        variant, original = _without_options(name, cfgs[name], cfgs[base], options)
        assert variant == original, name
    # The all-slices variants change those options and the BEV's width only: 8 slices x 64 channels, as
    # FlatFormer's.
    for name, (base, options) in ALL_SLICES.items():
        variant, original = _without_options(name, cfgs[name], cfgs[base], options)
        assert variant.pop("bev") == {"type": "BEVScatter", "in_channels": 64, "num_slices": 8}, name
        del original["bev"]
        assert variant["backbone2d"].pop("in_channels") == 512, name
        del original["backbone2d"]["in_channels"]
        assert variant == original, name
    # The learning-rate variants: the model of the config they extend, the same schedule but for its peak.
    for name, (base, peak) in PEAK_LR.items():
        assert cfgs[name].model == cfgs[base].model, name
        schedule, original = [dict(s) for s in cfgs[name].param_scheduler], [dict(s) for s in ref.param_scheduler]
        assert len(schedule) == len(original) == 1 and schedule[0].pop("eta_max") == peak, name
        assert original[0].pop("eta_max") != peak and schedule == original, name
    assert ref.train_cfg.max_epochs == 6


@pytest.mark.parametrize("name", NAMES)
def test_compare_config_builds_and_maps_to_the_same_bev_grid(name):
    import torch

    from pc3d.registry import MODELS

    cfg = _load(name)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    gen = torch.Generator().manual_seed(0)
    pts = torch.cat([torch.zeros(2000, 1), torch.rand(2000, 3, generator=gen) * torch.tensor([60.0, 60.0, 4.0])
                     - torch.tensor([30.0, 30.0, 1.5]), torch.rand(2000, 2, generator=gen)], dim=1)
    with torch.no_grad():
        voxels = model.voxel_encoder(model.voxelizer(pts, 1))
        if model.backbone3d is not None:
            voxels = model.backbone3d(voxels)
        bev = model.bev(voxels)
    # Every model hands the same 256 x 256 BEV grid to the same 2D backbone (only the width differs).
    assert bev.shape == (1, cfg.model.backbone2d.in_channels, 256, 256)
    assert (model.head.grid.height, model.head.grid.width) == (128, 128)
