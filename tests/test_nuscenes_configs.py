"""The nuScenes configs: the paper-scale DSVT-P / ScatterFormer configs build with the papers' settings and
run a frame to (K, 9) boxes with velocity, and the simulated-nuScenes CPU config trains and evaluates
(mAP, NDS) through tools/train.py."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    from mmengine.config import Config

    return Config.fromfile(str(next((ROOT / "configs").glob(f"*/{name}.py"))))


def _cloud(n, pc_range, seed=0):
    """(n, 1 + 5) points [sample 0, x, y, z, intensity, time lag] inside ``pc_range``."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(pc_range[:3]), torch.tensor(pc_range[3:])
    xyz = lo + torch.rand(n, 3, generator=g) * (hi - lo) * 0.999
    return torch.cat([torch.zeros(n, 1), xyz, torch.rand(n, 1, generator=g) * 255,
                      torch.rand(n, 1, generator=g) * 0.5], dim=1)


@pytest.mark.parametrize("name, backbone, grid", [("dsvt_pillar_nuscenes", "DSVT", (1, 360, 360)),
                                                  ("scatterformer_nuscenes", "ScatterFormer", (40, 360, 360))])
def test_paper_configs_build_with_paper_settings_and_predict_velocity(name, backbone, grid):
    from pc3d.registry import MODELS

    cfg = _load(name)
    assert cfg.model.backbone3d.type == backbone and cfg.model.head.with_velocity
    assert cfg.point_cloud_range == [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0] and cfg.max_epochs == 20
    assert cfg.val_evaluator.type == "NuScenesMetric" and len(cfg.class_names) == 10
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    if backbone == "DSVT":
        assert (model.backbone3d.set_size, model.backbone3d.window_shape) == ([90], [(30, 30)])
    with torch.no_grad():
        voxels = model.voxel_encoder(model.voxelizer(_cloud(3000, cfg.point_cloud_range), 1))
        assert tuple(voxels.spatial_shape) == grid
        out = model(dict(points=_cloud(3000, cfg.point_cloud_range), batch_size=1), mode="predict")
    # The stride-2 head covers the range on 180 x 180 cells; predicted boxes carry (vx, vy).
    assert (model.head.grid.height, model.head.grid.width) == (180, 180)
    assert out[0]["pred_boxes"].ndim == 2 and out[0]["pred_boxes"].shape[1] == 9


def test_simulated_nuscenes_config_trains_and_reports_nds(tmp_path):
    pytest.importorskip("open3d", reason="the LiDAR simulator needs open3d")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    root = tmp_path / "nuscenes_sim"

    def run(*args):
        proc = subprocess.run([sys.executable, *map(str, args)], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    create = ROOT / "tools" / "create_data.py"
    run(create, "nuscenes-sim", "--out", root, "--train-scenes", 1, "--val-scenes", 1, "--keyframes", 2,
        "--sweeps-between", 1, "--seed", 5, "--version", "v1.0-trainval")
    run(create, "nuscenes", "--root", root, "--version", "v1.0-trainval", "--sweeps", 2)
    work = tmp_path / "work"
    out = run(ROOT / "tools" / "train.py", ROOT / "configs" / "centerpoint" / "centerpoint_pillar_nuscenes_sim.py",
              "--work-dir", work, "--cfg-options", f"train_dataloader.dataset.data_root={root}",
              f"val_dataloader.dataset.data_root={root}", "train_dataloader.dataset.sweeps=2",
              "val_dataloader.dataset.sweeps=2", "train_dataloader.num_workers=0", "val_dataloader.num_workers=0",
              "train_dataloader.persistent_workers=False", "val_dataloader.persistent_workers=False",
              "train_cfg.max_epochs=2", "train_cfg.val_interval=2", "param_scheduler.0.end=2")
    assert (work / "epoch_2.pth").exists()
    for key in ("NDS", "mAP", "mAVE", "car_AP_dist_2", "car_vel_err"):
        assert f"nuscenes/{key}: " in out, f"{key} missing from the evaluation log"
