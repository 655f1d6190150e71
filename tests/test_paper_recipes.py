"""The papers' training recipes: every official value of the Waymo paper configs' data pipeline, optimiser,
schedule and hooks held against the configs, and the behaviour of what the recipes added (world
translation, per-class GT-sampling thresholds and OpenPCDet's collision rule, OpenPCDet/mmdet3d range
filters, feature tanh, the piecewise-cosine one-cycle with its momentum cycle, the last-epochs
augmentation switch-off, the Waymo GT database of ``tools/create_data.py waymo --gt-database``).

The expected values are those of the official files (docs/training_recipes.md names file and key).
"""
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from pc3d.datasets.gt_database import build_gt_database, load_gt_database
from pc3d.datasets.transforms import Compose, GlobalRotScaleTrans, ObjectSample, PointShuffle, PointsTanh, RangeFilter

ROOT = Path(__file__).resolve().parents[1]
CFG = ROOT / "configs"

PI_4 = 0.78539816  # WORLD_ROT_ANGLE / rot_range as the official files write it
GT_GROUPS = dict(Vehicle=15, Pedestrian=10, Cyclist=10)  # SAMPLE_GROUPS / db_sampler.sample_groups
GT_MIN_POINTS = dict(Vehicle=5, Pedestrian=10, Cyclist=10)  # filter_by_min_points
DSVT_AUG = ("ObjectSample", "RandomFlip", "GlobalRotScaleTrans")

# Per config: the official recipe. range: the pipeline's point-cloud range; box_rule / interval / points_z:
# the official range filter (OpenPCDet: x/y points, box centre x/y/z, bounds included; mmdet3d: x/y/z
# points, box BEV centre, bounds excluded).
OPENPCDET_TRAIN = ["ObjectSample", "RandomFlip", "GlobalRotScaleTrans", "RangeFilter", "PointShuffle"]
RECIPES = {
    "dsvt_pillar_waymo": dict(
        train=OPENPCDET_TRAIN, test=["RangeFilter", "PointShuffle"], batch=3, collision="drop_both",
        translation=(0.5, 0.5, 0.5), range=[-74.88, -74.88, -2.0, 74.88, 74.88, 4.0], points_z=False,
        box_rule="xyz", interval="closed", tanh_dims=None, optimizer="openpcdet", lr=0.003, epochs=24,
        hook=dict(num_last_epochs=1, disable_types=DSVT_AUG)),
    "scatterformer_waymo": dict(
        train=["PointsTanh"] + OPENPCDET_TRAIN, test=["PointsTanh", "RangeFilter", "PointShuffle"], batch=4,
        collision="drop_both", translation=(0.5, 0.5, 0.5), range=[-76.8, -76.8, -2.0, 76.8, 76.8, 4.0],
        points_z=False, box_rule="xyz", interval="closed", tanh_dims=(4,), optimizer="openpcdet", lr=0.006,
        epochs=24, hook=dict(num_last_epochs=4, disable_types=("ObjectSample",))),
    "flatformer_waymo": dict(
        train=["ObjectSample", "PointsTanh", "RandomFlip", "GlobalRotScaleTrans", "RangeFilter", "PointShuffle"],
        test=["PointsTanh", "RangeFilter"], batch=1, collision="greedy", translation=(0.0, 0.0, 0.0),
        range=[-74.88, -74.88, -1.999, 74.88, 74.88, 3.999], points_z=True, box_rule="xy", interval="open",
        tanh_dims=(4,), optimizer="mmdet3d", lr=1e-5, epochs=24, hook=None),
}
RECIPES["dsvt_voxel_waymo"] = RECIPES["dsvt_pillar_waymo"]  # dsvt_3D_1f_onestage.yaml: the same recipe


def load(name):
    return Config.fromfile(str(CFG / "waymo" / f"{name}.py"))


def by_type(pipeline, name):
    found = [t for t in pipeline if t["type"] == name]
    assert len(found) == 1, f"{name}: {len(found)} entries in {[t['type'] for t in pipeline]}"
    return found[0]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_data_pipeline_is_the_official_one(name):
    r, cfg = RECIPES[name], load(name)
    train = cfg.train_dataloader.dataset.pipeline
    test = cfg.val_dataloader.dataset.pipeline
    assert [t["type"] for t in train] == r["train"]
    assert [t["type"] for t in test] == r["test"]
    assert cfg.test_dataloader.dataset.pipeline == test

    gt = by_type(train, "ObjectSample")
    assert gt["sample_groups"] == GT_GROUPS and gt["min_points"] == GT_MIN_POINTS
    assert gt["collision"] == r["collision"] and gt["db_path"] == "data/waymo/gt_database_train.npz"
    flip = by_type(train, "RandomFlip")
    assert (flip["flip_x_prob"], flip["flip_y_prob"]) == (0.5, 0.5)
    rst = by_type(train, "GlobalRotScaleTrans")
    assert tuple(rst["rot_range"]) == (-PI_4, PI_4) and tuple(rst["scale_range"]) == (0.95, 1.05)
    assert tuple(rst["translation_std"]) == r["translation"]
    for pipeline, boxes in ((train, r["box_rule"]), (test, "none")):  # no GT box is dropped for evaluation
        rf = by_type(pipeline, "RangeFilter")
        assert rf["point_cloud_range"] == r["range"] and rf["boxes"] == boxes
        assert rf["points_z"] == r["points_z"] and rf["interval"] == r["interval"]
    if r["tanh_dims"] is None:
        assert all(t["type"] != "PointsTanh" for t in train + test)
    else:
        dims = [tuple(by_type(p, "PointsTanh")["dims"]) for p in (train, test)]
        assert dims == [r["tanh_dims"]] * 2

    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        ds = loader.dataset
        assert (ds.type, ds.source, ds.drop_nlz, ds.tanh_intensity, ds.sampled_interval) == (
            "WaymoDataset", "openpcdet", True, True, 1)
    assert cfg.train_dataloader.batch_size == r["batch"] and cfg.train_dataloader.sampler.shuffle is True
    # OpenPCDet's prepare_data / mmdet3d's filter_empty_gt: an emptied training scene is redrawn
    assert cfg.train_dataloader.dataset.resample_empty_gt is True
    assert not cfg.val_dataloader.dataset.get("resample_empty_gt", False)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_optimiser_schedule_and_hooks_are_the_official_ones(name):
    r, cfg = RECIPES[name], load(name)
    lr, opt = r["lr"], cfg.optim_wrapper
    assert opt.clip_grad == dict(max_norm=10, norm_type=2)
    assert cfg.max_epochs == cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval == r["epochs"]
    scheds = cfg.param_scheduler
    for s in scheds:
        assert (s["by_epoch"], s["convert_to_iter_based"], s["begin"], s["end"]) == (True, True, 0, r["epochs"])
        assert tuple(s["milestones"]) == (0.1,)  # PCT_START / step_ratio_up
    if r["optimizer"] == "openpcdet":  # adam_onecycle: decoupled weight decay on every parameter
        assert opt.optimizer.type == "AdamW" and opt.optimizer.weight_decay == 0.05
        assert opt.optimizer.betas[1] == 0.99 and "paramwise_cfg" not in opt
        assert [s["type"] for s in scheds] == ["CosinePhasesLR", "CosinePhasesMomentum"]
        assert scheds[0]["values"] == pytest.approx((lr / 100, lr, lr / 100 / 1e4), rel=1e-12)  # DIV_FACTOR 100
        assert tuple(scheds[1]["values"]) == (0.95, 0.85, 0.95)  # MOMS
    else:  # mmdet3d cosine_2x: AdamW, no decay on 'norm' parameters, cyclic (100, 1e-3)
        assert opt.optimizer.type == "AdamW" and opt.optimizer.lr == lr
        assert tuple(opt.optimizer.betas) == (0.9, 0.999) and opt.optimizer.weight_decay == 0.05
        assert opt.paramwise_cfg == dict(custom_keys={"norm": dict(decay_mult=0.0)})
        assert [s["type"] for s in scheds] == ["CosinePhasesLR"]
        assert scheds[0]["values"] == pytest.approx((lr, lr * 100, lr * 1e-3), rel=1e-12)
    hooks = [h for h in cfg.custom_hooks if h["type"] == "DisableAugmentationHook"]
    if r["hook"] is None:
        assert not hooks
    else:
        assert len(hooks) == 1 and hooks[0]["num_last_epochs"] == r["hook"]["num_last_epochs"]
        assert tuple(hooks[0]["disable_types"]) == r["hook"]["disable_types"]
        train_types = [t["type"] for t in cfg.train_dataloader.dataset.pipeline]
        assert set(r["hook"]["disable_types"]) <= set(train_types)
    assert {"ProgressBarHook", "ResumeStateHook"} <= {h["type"] for h in cfg.custom_hooks}


def test_flatformer_weight_decay_skips_exactly_the_transformer_layernorms():
    """custom_keys {'norm': decay_mult 0} selects, in the official model, its transformer LayerNorms
    (norm1/norm2) and nothing else; in pc3d's FlatFormer detector it must select the same parameters."""
    from mmengine.optim import build_optim_wrapper

    from pc3d.registry import MODELS

    cfg = load("flatformer_waymo")
    model = MODELS.build(cfg.model)
    layer_norm = {f"{m}.{p}" for m, mod in model.named_modules() if isinstance(mod, torch.nn.LayerNorm)
                  for p, _ in mod.named_parameters(recurse=False)}
    assert layer_norm and all(n.startswith("backbone3d.") for n in layer_norm)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for g in wrapper.optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    decayed = {names[id(p)] for g in wrapper.optimizer.param_groups if g["weight_decay"] == 0.05
               for p in g["params"]}
    assert no_decay == layer_norm
    assert decayed == set(names.values()) - layer_norm


def test_demo_recipe_unchanged():
    """`make demo` keeps its own recipe: OneCycleLR (3e-3, 40 % warm-up, div 10 / 100), 18 epochs,
    AdamW (0.95, 0.99) wd 0.01, no GT sampling, no augmentation switch-off."""
    cfg = Config.fromfile(str(CFG / "centerpoint" / "centerpoint_pillar_synthetic.py"))
    assert cfg.param_scheduler == [dict(type="OneCycleLR", eta_max=3e-3, pct_start=0.4, div_factor=10,
                                        final_div_factor=100, by_epoch=True, convert_to_iter_based=True,
                                        begin=0, end=18)]
    assert cfg.optim_wrapper.optimizer == dict(type="AdamW", lr=3e-3 / 10, betas=(0.95, 0.99), weight_decay=0.01)
    assert cfg.train_cfg.max_epochs == 18 and cfg.train_dataloader.batch_size == 2
    assert [t["type"] for t in cfg.train_dataloader.dataset.pipeline] == [
        "RangeFilter", "RandomFlip", "GlobalRotScaleTrans", "RangeFilter", "PointShuffle"]
    assert "translation_std" not in cfg.train_dataloader.dataset.pipeline[2]
    assert [h["type"] for h in cfg.custom_hooks] == ["ProgressBarHook", "ResumeStateHook"]


# ----------------------------------------------------------------------------------------------- schedule
def openpcdet_one_cycle(step, total, lr_max, div_factor, moms, pct_start):
    """OpenPCDet's OneCycle (learning_schedules_fastai.py) at ``step``: its phases start at
    int(start * total), each annealed with ``end + (start - end) / 2 * (cos(pi * pct) + 1)``."""
    def cos_anneal(a, b, pct):
        return b + (a - b) / 2.0 * (np.cos(np.pi * pct) + 1)

    low = lr_max / div_factor
    lr_phases = [(0, lambda p: cos_anneal(low, lr_max, p)), (pct_start, lambda p: cos_anneal(lr_max, low / 1e4, p))]
    mom_phases = [(0, lambda p: cos_anneal(moms[0], moms[1], p)),
                  (pct_start, lambda p: cos_anneal(moms[1], moms[0], p))]

    def value(phases):
        bounds = [int(s * total) for s, _ in phases] + [total]
        out = None
        for (start, fn), b0, b1 in zip(phases, bounds, bounds[1:]):
            if step >= b0:
                out = fn((step - b0) / (b1 - b0))
        return out

    return value(lr_phases), value(mom_phases)


def build_schedulers(cfg_list, epoch_length, optimizer):
    from mmengine.registry import PARAM_SCHEDULERS

    import pc3d.engine  # noqa: F401  (registers the schedulers)

    return [PARAM_SCHEDULERS.build(dict(c, optimizer=optimizer, epoch_length=epoch_length)) for c in cfg_list]


@pytest.mark.parametrize("name,epoch_length", [("dsvt_pillar_waymo", 7), ("scatterformer_waymo", 13)])
def test_one_cycle_lr_and_momentum_follow_openpcdet_every_iteration(name, epoch_length):
    """Built from the config as the Runner builds it (epochs -> iterations), the lr and Adam's beta1 at
    every iteration equal OpenPCDet's OneCycle: start lr_max / 100 and 0.95, peak lr_max and 0.85 at
    int(0.1 T), end near lr_max / 1e6 and 0.95."""
    cfg = load(name)
    lr_max = RECIPES[name]["lr"]
    param = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.AdamW([param], lr=1.0, betas=(0.9, 0.99), weight_decay=0.05)
    scheds = build_schedulers(cfg.param_scheduler, epoch_length, opt)
    total = epoch_length * cfg.max_epochs
    seen = []
    for step in range(total):
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[0]["betas"]))
        opt.step()
        for s in scheds:
            s.step()
    peak = int(0.1 * total)
    for step, (lr, betas) in enumerate(seen):
        want_lr, want_mom = openpcdet_one_cycle(step, total, lr_max, 100, (0.95, 0.85), 0.1)
        assert lr == pytest.approx(want_lr, rel=1e-12, abs=1e-18), step
        assert betas == (pytest.approx(want_mom, rel=1e-12), 0.99), step
    assert seen[0][0] == pytest.approx(lr_max / 100) and seen[0][1][0] == pytest.approx(0.95)
    assert seen[peak][0] == pytest.approx(lr_max) and seen[peak][1][0] == pytest.approx(0.85)
    last = (total - 1 - peak) / (total - peak)
    assert seen[-1][0] == pytest.approx(lr_max * 1e-6 + (lr_max - lr_max * 1e-6) / 2 * (1 + math.cos(math.pi * last)))
    assert seen[-1][1][0] == pytest.approx(0.85 + 0.1 / 2 * (1 - math.cos(math.pi * last)))
    # mmengine's OneCycleLR with the same numbers (the schedule these configs had) ends its warm-up at
    # pct_start * T - 1, not int(pct_start * T): it is not OpenPCDet's schedule
    mm_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    mm = build_schedulers([dict(type="OneCycleLR", eta_max=lr_max, pct_start=0.1, div_factor=100,
                                final_div_factor=1e4, by_epoch=True, convert_to_iter_based=True, begin=0,
                                end=cfg.max_epochs)], epoch_length, mm_opt)[0]
    mm_lrs = []
    for _ in range(total):
        mm_lrs.append(mm_opt.param_groups[0]["lr"])
        mm_opt.step()
        mm.step()
    assert max(abs(a - b[0]) / b[0] for a, b in zip(mm_lrs, seen)) > 0.01


def test_flatformer_schedule_is_mmcv_cyclic():
    """mmcv's CyclicLrUpdaterHook, target_ratio (100, 1e-3), step_ratio_up 0.1, one cycle: cosine from lr to
    100 lr over [0, int(0.1 T)), then to 1e-3 lr over [int(0.1 T), T); beta1 untouched."""
    cfg = load("flatformer_waymo")
    param = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.AdamW([param], lr=1e-5, betas=(0.9, 0.999))
    epoch_length = 11
    scheds = build_schedulers(cfg.param_scheduler, epoch_length, opt)
    total, up = epoch_length * 24, int(0.1 * epoch_length * 24)
    for step in range(total):
        lr = opt.param_groups[0]["lr"]
        if step < up:
            want = 1e-3 + (1e-5 - 1e-3) / 2 * (1 + math.cos(math.pi * step / up))
        else:
            want = 1e-8 + (1e-3 - 1e-8) / 2 * (1 + math.cos(math.pi * (step - up) / (total - up)))
        assert lr == pytest.approx(want, rel=1e-12), step
        assert opt.param_groups[0]["betas"] == (0.9, 0.999)
        opt.step()
        for s in scheds:
            s.step()


def test_cosine_phases_refuses_bad_arguments():
    from pc3d.engine.schedulers import CosinePhasesLR

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="len\\(milestones\\) \\+ 2"):
        CosinePhasesLR(opt, values=(1, 2), milestones=(0.5,), end=10)
    with pytest.raises(ValueError, match="increase within"):
        CosinePhasesLR(opt, values=(1, 2, 3), milestones=(1.5,), end=10)
    with pytest.raises(ValueError, match="empty phase"):
        CosinePhasesLR(opt, values=(1, 2, 3), milestones=(0.01,), end=10)
    with pytest.raises(ValueError, match="finite end"):
        CosinePhasesLR(opt, values=(1, 2), milestones=())


# ----------------------------------------------------------------------------------------------- transforms
def scene(rng, n=400):
    pts = np.column_stack([rng.uniform(-30, 30, (n, 3)), rng.uniform(0, 3, (n, 2))]).astype(np.float32)
    boxes = np.array([[5, 5, 0.5, 4, 2, 1.5, 0.3], [-10, 3, 0.2, 0.8, 0.8, 1.8, -1.0]], np.float32)
    return {"points": pts, "gt_boxes": boxes, "gt_labels": np.array([0, 1]), "gt_num_points": np.array([10, 12]),
            "gt_difficulty": np.array([1, 2])}


def test_world_translation_moves_points_and_boxes_by_the_drawn_vector():
    rng = np.random.default_rng(0)
    item = scene(rng)
    before = {k: v.copy() for k, v in item.items()}
    t = GlobalRotScaleTrans(rot_range=(0.0, 0.0), scale_range=(1.0, 1.0), translation_std=(0.5, 0.5, 0.5))
    draw = np.random.default_rng(7)
    out = t(item, np.random.default_rng(7))
    draw.uniform(0.0, 0.0), draw.uniform(1.0, 1.0)  # the rotation and scale draws come first
    shift = draw.standard_normal(3) * 0.5
    assert np.abs(shift).max() > 0.05
    np.testing.assert_allclose(out["points"][:, :3] - before["points"][:, :3], np.broadcast_to(shift, (400, 3)),
                               atol=1e-5)
    np.testing.assert_array_equal(out["points"][:, 3:], before["points"][:, 3:])
    np.testing.assert_allclose(out["gt_boxes"][:, :3] - before["gt_boxes"][:, :3], np.broadcast_to(shift, (2, 3)),
                               atol=1e-5)
    np.testing.assert_allclose(out["gt_boxes"][:, 3:], before["gt_boxes"][:, 3:], atol=1e-6)
    # a different generator state draws another vector
    other = t({k: v.copy() for k, v in before.items()}, np.random.default_rng(8))
    assert not np.allclose(other["points"][:, :3], out["points"][:, :3])


def test_range_filter_official_variants():
    r = [-10.0, -10.0, -2.0, 10.0, 10.0, 4.0]
    pts = np.array([[10, 0, 0, 0, 0], [-10, 0, 0, 0, 0], [0, 0, 5, 0, 0], [0, 0, 0, 0, 0]], np.float32)
    boxes = np.array([[0, 0, 5, 1, 1, 1, 0], [10, 0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1, 0]], np.float32)

    def run(**kw):
        item = {"points": pts.copy(), "gt_boxes": boxes.copy(), "gt_labels": np.arange(3)}
        out = RangeFilter(r, **kw)(item)
        return out["points"][:, :3].tolist(), out["gt_labels"].tolist()

    p, b = run()  # pc3d: [min, max), z tested for points, box centre x/y
    assert p == [[-10, 0, 0], [0, 0, 0]] and b == [0, 2]
    p, b = run(points_z=False, boxes="xyz", interval="closed")  # OpenPCDet
    assert p == pts[:, :3].tolist() and b == [1, 2]
    p, b = run(points_z=True, boxes="xy", interval="open")  # mmdet3d
    assert p == [[0, 0, 0]] and b == [0, 2]
    _, b = run(boxes="none")
    assert b == [0, 1, 2]
    with pytest.raises(ValueError, match="interval"):
        RangeFilter(r, interval="inclusive")
    with pytest.raises(ValueError, match="boxes"):
        RangeFilter(r, boxes="corners")


def test_points_tanh_squashes_only_the_named_columns():
    rng = np.random.default_rng(1)
    item = scene(rng)
    raw = item["points"].copy()
    out = PointsTanh(dims=(4,))(item)
    np.testing.assert_array_equal(out["points"][:, :4], raw[:, :4])
    np.testing.assert_allclose(out["points"][:, 4], np.tanh(raw[:, 4]), rtol=1e-6)
    with pytest.raises(ValueError, match="columns"):
        PointsTanh(dims=(5,))({"points": raw.copy()})
    with pytest.raises(ValueError, match="feature columns"):
        PointsTanh(dims=(2,))


def make_db(path, boxes, labels, num_points):
    """A database of one frame whose objects are ``boxes`` with ``num_points`` points each at the centre."""
    pts = np.concatenate([np.tile(np.r_[b[:3], 0.5, 0.5], (n, 1)) for b, n in zip(boxes, num_points)])
    pts = pts.astype(np.float32)
    frame = {"points": pts, "gt_boxes": np.asarray(boxes, np.float32), "gt_labels": np.asarray(labels),
             "gt_difficulty": np.ones(len(boxes), np.int64)}
    return build_gt_database([(0, frame)], path)


def test_gt_sampling_per_class_min_points(tmp_path):
    boxes = [[20, 0, 0, 4, 2, 1.5, 0], [20, 10, 0, 4, 2, 1.5, 0], [-20, 0, 0, 0.8, 0.8, 1.8, 0],
             [-20, 10, 0, 0.8, 0.8, 1.8, 0]]
    make_db(tmp_path / "db.npz", boxes, [0, 0, 1, 1], [6, 4, 12, 9])
    s = ObjectSample(tmp_path / "db.npz", GT_GROUPS, min_points=GT_MIN_POINTS)
    assert s.by_class["Vehicle"].tolist() == [0] and s.by_class["Pedestrian"].tolist() == [2]
    assert ObjectSample(tmp_path / "db.npz", GT_GROUPS, min_points=5).by_class["Pedestrian"].tolist() == [2, 3]
    with pytest.raises(ValueError, match="unknown classes"):
        ObjectSample(tmp_path / "db.npz", GT_GROUPS, min_points={"Truck": 3})


@pytest.mark.parametrize("collision,kept", [("greedy", 1), ("drop_both", 0)])
def test_gt_sampling_collision_rules(tmp_path, collision, kept):
    """Two database vehicles that overlap each other (and nothing in the scene): mmdet3d keeps the first
    drawn, OpenPCDet drops both; a third, clear of everything, is kept by both."""
    boxes = [[20, 0, 0, 4, 2, 1.5, 0], [21, 0.5, 0, 4, 2, 1.5, 0.2], [-20, -20, 0, 4, 2, 1.5, 0]]
    make_db(tmp_path / "db.npz", boxes, [0, 0, 0], [8, 8, 8])
    s = ObjectSample(tmp_path / "db.npz", {"Vehicle": 5}, min_points=5, collision=collision)
    item = scene(np.random.default_rng(2))
    out = s(item, np.random.default_rng(0))
    pasted = out["gt_boxes"][2:]
    assert len(pasted) == kept + 1
    assert any(np.allclose(b[:2], [-20, -20]) for b in pasted)
    with pytest.raises(ValueError, match="collision"):
        ObjectSample(tmp_path / "db.npz", collision="iou")


# ----------------------------------------------------------------------------------------------- hook
class ShiftDataset(torch.utils.data.Dataset):
    """Four one-point items through a pc3d pipeline; returns the point."""

    def __init__(self, pipeline):
        self.pipeline = Compose(pipeline)

    def __len__(self):
        return 4

    def __getitem__(self, i):
        item = {"points": np.full((1, 5), float(i), np.float32), "gt_boxes": np.zeros((0, 7), np.float32)}
        return torch.from_numpy(self.pipeline(item, np.random.default_rng(i))["points"][0])


class FakeRunner:
    def __init__(self, loader, max_epochs):
        import logging

        self.train_dataloader, self.max_epochs, self.epoch = loader, max_epochs, 0
        self.logger = logging.getLogger("test_paper_recipes")


@pytest.mark.parametrize("num_workers", [0, 1])
def test_disable_augmentation_hook_switches_the_pipeline_off_from_epoch_n(num_workers):
    """Epochs before max_epochs - N see the augmentation (points shifted), the last N do not, also through
    a DataLoader whose persistent worker was started with the augmenting pipeline."""
    from pc3d.engine.hooks import DisableAugmentationHook

    shift = GlobalRotScaleTrans(rot_range=(0, 0), scale_range=(1, 1), translation_std=(5.0, 5.0, 5.0))
    ds = ShiftDataset([shift, PointShuffle()])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=num_workers,
                                         persistent_workers=num_workers > 0)
    runner = FakeRunner(loader, max_epochs=5)
    hook = DisableAugmentationHook(num_last_epochs=2, disable_types=("GlobalRotScaleTrans",))
    raw = torch.arange(4, dtype=torch.float32)[:, None].expand(4, 5)
    for epoch in range(5):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        batch = next(iter(loader))
        if epoch < 3:
            assert not torch.allclose(batch[:, :3], raw[:, :3]), epoch
            assert [type(t).__name__ for t in ds.pipeline.transforms] == ["GlobalRotScaleTrans", "PointShuffle"]
        else:
            torch.testing.assert_close(batch, raw)
            assert [type(t).__name__ for t in ds.pipeline.transforms] == ["PointShuffle"]


def test_disable_augmentation_hook_refuses_unknown_transforms():
    from pc3d.engine.hooks import DisableAugmentationHook

    ds = ShiftDataset([PointShuffle()])
    runner = FakeRunner(torch.utils.data.DataLoader(ds), max_epochs=2)
    runner.epoch = 1
    with pytest.raises(ValueError, match="ObjectSample"):
        DisableAugmentationHook(1, ("ObjectSample",)).before_train_epoch(runner)
    with pytest.raises(ValueError, match="num_last_epochs"):
        DisableAugmentationHook(0)
    with pytest.raises(ValueError, match="disable_types"):
        DisableAugmentationHook(1, "ObjectSample")


# ----------------------------------------------------------------------------------------------- database
def write_openpcdet_frames(root, rng, n_frames=2):
    """OpenPCDet-layout frames whose objects hold known points (raw intensity, some in no-label zones)."""
    pdir = root / "waymo_processed_data" / "segment-7"
    pdir.mkdir(parents=True)
    infos = []
    for idx in range(n_frames):
        boxes = np.array([[10, 0, 0.8, 4.5, 2.0, 1.6, 0.4], [-8, 6, 0.9, 0.9, 0.9, 1.8, -0.3],
                          [0, -12, 0.8, 1.8, 0.7, 1.7, 2.0]], np.float64)
        boxes[:, 0] += 20 * idx  # no object overlaps another frame's
        parts = []
        for b, n in zip(boxes, (30, 12, 9)):
            local = rng.uniform(-0.4, 0.4, (n, 3)) * b[3:6]
            c, s = np.cos(b[6]), np.sin(b[6])
            xyz = local @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) + b[:3]
            parts.append(np.column_stack([xyz, rng.uniform(0, 5, (n, 2)), -np.ones(n)]))
        background = np.column_stack([rng.uniform(-40, 40, (300, 2)), rng.uniform(-1, 0, 300),
                                      rng.uniform(0, 5, (300, 2)), np.where(rng.random(300) < 0.1, 1.0, -1.0)])
        pts = np.concatenate(parts + [background]).astype(np.float32)
        np.save(pdir / f"{idx:04d}.npy", pts)
        infos.append({
            "point_cloud": {"num_features": 5, "lidar_sequence": "segment-7", "sample_idx": idx},
            "frame_id": f"segment-7_{idx:03d}", "pose": np.eye(4, dtype=np.float32),
            "num_points_of_each_lidar": [len(pts), 0, 0, 0, 0],
            "annos": {"name": np.array(["Vehicle", "Pedestrian", "Cyclist"]), "difficulty": np.zeros(3, np.int64),
                      "dimensions": boxes[:, 3:6], "location": boxes[:, :3], "heading_angles": boxes[:, 6],
                      "obj_ids": np.array(["a", "b", "c"]), "tracking_difficulty": np.zeros(3),
                      "num_points_in_gt": np.array([30, 12, 9]), "gt_boxes_lidar": boxes}})
    with open(root / "waymo_processed_data" / "segment-7" / "segment-7.pkl", "wb") as f:
        pickle.dump(infos, f)
    return infos


def test_create_data_waymo_gt_database_feeds_the_paper_sampler(tmp_path):
    """`create_data.py waymo --source openpcdet --gt-database` writes the database the DSVT recipe's
    ObjectSample reads: every object's in-box points relative to its centre, intensity squashed, NLZ
    points dropped; the recipe's per-class minimum keeps the 9-point cyclists out."""
    import argparse

    from pc3d.datasets import WaymoDataset
    from pc3d.datasets.box_utils import points_in_boxes_indices
    from pc3d.datasets.waymo import convert
    from pc3d.registry import TRANSFORMS

    write_openpcdet_frames(tmp_path, np.random.default_rng(3))
    parser = argparse.ArgumentParser()
    convert.add_parser(parser.add_subparsers(dest="dataset"))
    args = parser.parse_args(["waymo", "--root", str(tmp_path), "--source", "openpcdet", "--splits", "train",
                              "--gt-database"])
    args.func(args)
    db = load_gt_database(tmp_path / "gt_database_train.npz")
    ds = WaymoDataset(tmp_path, "train", source="openpcdet", tanh_intensity=True)
    assert db["labels"].tolist() == [0, 1, 2, 0, 1, 2] and db["frame_index"].tolist() == [0, 0, 0, 1, 1, 1]
    for k in range(6):
        item = ds.get_data_info(int(db["frame_index"][k]))
        box = item["gt_boxes"][k % 3]
        idx = points_in_boxes_indices(item["points"], box[None])[0]
        obj = db["points"][db["offsets"][k]:db["offsets"][k + 1]]
        assert len(obj) == db["num_points"][k] == len(idx) > 0
        np.testing.assert_allclose(obj[:, :3] + box[:3], item["points"][idx, :3], atol=1e-5)
        np.testing.assert_array_equal(obj[:, 3:], item["points"][idx, 3:])
        assert np.abs(obj[:, 3]).max() < 1.0  # tanh-squashed intensity
    cfg = load("dsvt_pillar_waymo")
    gt = dict(by_type(cfg.train_dataloader.dataset.pipeline, "ObjectSample"),
              db_path=str(tmp_path / "gt_database_train.npz"))
    sampler = TRANSFORMS.build(gt)
    assert sampler.by_class["Cyclist"].size == 0 and sampler.by_class["Vehicle"].size == 2
    item = ds.get_data_info(0)
    empty = {k: (v[:0] if k.startswith("gt_") else v) for k, v in item.items()}
    out = sampler(empty, np.random.default_rng(0))
    assert sorted(out["gt_labels"].tolist()) == [0, 0, 1, 1]  # no cyclist has 10 points
    for box in out["gt_boxes"]:
        k = int(np.nonzero((db["boxes"] == box).all(1))[0][0])
        inside = out["points"][points_in_boxes_indices(out["points"], box[None])[0]]
        obj = db["points"][db["offsets"][k]:db["offsets"][k + 1]]
        np.testing.assert_allclose(np.sort(inside[:, 0]), np.sort(obj[:, 0] + box[0]), atol=1e-5)


@pytest.mark.parametrize("name", ["dsvt_pillar_waymo", "scatterformer_waymo", "flatformer_waymo"])
def test_recipe_pipelines_run_on_waymo_frames(tmp_path, name):
    """Each config's train and test datasets, built from the config with a real (tiny) OpenPCDet layout and
    its database, give items with the recipe's feature squashing; the train items gain pasted objects."""
    from pc3d.datasets import WaymoDataset
    from pc3d.datasets.waymo.convert import build_database
    from pc3d.registry import DATASETS

    write_openpcdet_frames(tmp_path, np.random.default_rng(4))
    infos = (tmp_path / "waymo_processed_data" / "segment-7" / "segment-7.pkl").read_bytes()
    (tmp_path / "waymo_infos_train.pkl").write_bytes(infos)  # the split's info file, as create_data writes it
    build_database(tmp_path, progress=False)
    cfg = load(name)
    train_cfg = cfg.train_dataloader.dataset
    train_cfg.data_root = str(tmp_path)
    train_cfg.seed = 0
    for t in train_cfg.pipeline:
        if t["type"] == "ObjectSample":
            t["db_path"] = str(tmp_path / "gt_database_train.npz")
    train = DATASETS.build(train_cfg)
    test_cfg = dict(cfg.val_dataloader.dataset, data_root=str(tmp_path), split="train", seed=0)
    test = DATASETS.build(test_cfg)
    raw = WaymoDataset(tmp_path, "train", source="openpcdet", tanh_intensity=True)
    for i in range(2):
        a, t, r = train[i], test[i], raw.get_data_info(i)
        assert a["points"].shape[1] == t["points"].shape[1] == 5
        assert len(a["gt_boxes"]) > len(r["gt_boxes"])  # the other frame's objects were pasted
        squash_elongation = RECIPES[name]["tanh_dims"] == (4,)
        # test items: no augmentation, so the same points as the raw frame (up to order and range)
        keep = RangeFilter(RECIPES[name]["range"], points_z=RECIPES[name]["points_z"],
                           interval=RECIPES[name]["interval"])({"points": r["points"].copy()})["points"]
        want = keep.copy()
        if squash_elongation:
            want[:, 4] = np.tanh(want[:, 4])
        np.testing.assert_allclose(np.sort(t["points"], axis=0), np.sort(want, axis=0), rtol=1e-6)
        assert len(t["gt_boxes"]) == len(r["gt_boxes"])


def stack_points(batch):
    return {"points": torch.stack(batch)}


def test_disable_augmentation_hook_in_a_runner(tmp_path):
    """In an mmengine Runner with pc3d's training loop and a persistent worker, epochs 1-2 of 3 train on
    shifted points and epoch 3 (num_last_epochs=1) on the raw ones."""
    from mmengine.model import BaseModel

    from pc3d.engine import Runner
    from pc3d.engine.hooks import DisableAugmentationHook

    class Recorder(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def forward(self, points, mode="loss"):
            self.seen.append(points.clone())
            return {"loss": ((self.w - 1) ** 2).sum()}

    shift = GlobalRotScaleTrans(rot_range=(0, 0), scale_range=(1, 1), translation_std=(5.0, 5.0, 5.0))
    loader = torch.utils.data.DataLoader(ShiftDataset([shift, PointShuffle()]), batch_size=4, num_workers=1,
                                         persistent_workers=True, collate_fn=stack_points)
    model = Recorder()
    runner = Runner(model=model, work_dir=str(tmp_path), train_dataloader=loader,
                    optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
                    train_cfg=dict(type="ResumableEpochBasedTrainLoop", max_epochs=3),
                    custom_hooks=[DisableAugmentationHook(num_last_epochs=1, disable_types=("GlobalRotScaleTrans",))],
                    default_hooks=dict(checkpoint=None, logger=None), randomness=dict(seed=0))
    runner.train()
    raw = torch.arange(4, dtype=torch.float32)[:, None].expand(4, 5)
    assert len(model.seen) == 3
    assert not torch.allclose(model.seen[0], raw) and not torch.allclose(model.seen[1], raw)
    torch.testing.assert_close(model.seen[2], raw)


def test_resample_empty_gt_replaces_a_training_scene_left_without_boxes(tmp_path):
    """A frame whose boxes the pipeline removes is replaced by another frame's item (repeatably for a
    seed); without the option, or in test mode, the empty item stays."""
    from pc3d.datasets import WaymoDataset

    write_openpcdet_frames(tmp_path, np.random.default_rng(5), n_frames=3)
    infos = (tmp_path / "waymo_processed_data" / "segment-7" / "segment-7.pkl").read_bytes()
    (tmp_path / "waymo_infos_train.pkl").write_bytes(infos)

    def drop_frame0_boxes(item, rng):
        if item["frame_id"].endswith("_000"):
            item = dict(item, gt_boxes=item["gt_boxes"][:0], gt_labels=item["gt_labels"][:0])
        return item

    on = WaymoDataset(tmp_path, "train", pipeline=[drop_frame0_boxes], seed=3, resample_empty_gt=True)
    item = on[0]
    assert item["frame_id"] in ("segment-7_001", "segment-7_002") and len(item["gt_boxes"]) == 3
    assert on[0]["frame_id"] == item["frame_id"]  # the same redraw for the same (seed, index)
    assert on[1]["frame_id"] == "segment-7_001"  # items with boxes are untouched
    off = WaymoDataset(tmp_path, "train", pipeline=[drop_frame0_boxes], seed=3)
    assert off[0]["frame_id"] == "segment-7_000" and len(off[0]["gt_boxes"]) == 0
    test = WaymoDataset(tmp_path, "train", pipeline=[drop_frame0_boxes], seed=3, resample_empty_gt=True,
                        test_mode=True)
    assert test[0]["frame_id"] == "segment-7_000"
