"""Shared by the engine tests (distributed, resume, determinism): a tiny on-disk dataset in the
simulator's layout (random points plus points filling a few boxes; no ray casting, so no open3d) and a
tiny CenterPoint-Pillar config for tools/train.py and tools/test.py."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY_RANGE = [-20.48, -20.48, -2.0, 20.48, 20.48, 4.0]
SIZES = {0: (4.2, 1.9, 1.6), 1: (0.8, 0.8, 1.8), 2: (1.8, 0.7, 1.7)}  # (dx, dy, dz) per label


def _frame(rng, frame_id, seed):
    boxes, labels, pts, owner = [], [], [], []
    for k in range(int(rng.integers(2, 5))):
        label = int(rng.integers(0, 3))
        dx, dy, dz = SIZES[label]
        cx, cy = rng.uniform(-16, 16, size=2)
        heading = rng.uniform(-np.pi, np.pi)
        boxes.append([cx, cy, -1.0 + dz / 2, dx, dy, dz, heading])
        labels.append(label)
        n = int(rng.integers(3, 120))  # some boxes with <= 5 points (LEVEL_2)
        local = rng.uniform(-0.5, 0.5, size=(n, 3)) * [dx, dy, dz]
        c, s = np.cos(heading), np.sin(heading)
        xyz = np.stack([cx + c * local[:, 0] - s * local[:, 1], cy + s * local[:, 0] + c * local[:, 1],
                        -1.0 + dz / 2 + local[:, 2]], axis=1)
        pts.append(xyz)
        owner.append(np.full(n, k, np.int32))
    bg = np.stack([rng.uniform(-20, 20, 1500), rng.uniform(-20, 20, 1500), rng.uniform(-1.9, -1.7, 1500)], axis=1)
    pts.append(bg)
    owner.append(np.full(len(bg), -1, np.int32))
    xyz = np.concatenate(pts).astype(np.float32)
    feats = rng.uniform(0, 1, size=(len(xyz), 2)).astype(np.float32)
    counts = np.array([(np.concatenate(owner) == k).sum() for k in range(len(boxes))], np.int64)
    return {"points": np.concatenate([xyz, feats], axis=1), "point_object_id": np.concatenate(owner),
            "gt_boxes": np.asarray(boxes, np.float32), "gt_labels": np.asarray(labels, np.int64),
            "gt_num_points": counts, "gt_difficulty": np.where(counts <= 5, 2, 1).astype(np.int64),
            "empty_boxes": np.zeros((0, 7), np.float32), "empty_labels": np.zeros(0, np.int64),
            "frame_id": frame_id, "seed": seed}


def simulate_with_cli(tmp_path_factory, n_train, n_val, seed):
    """``n_train`` + ``n_val`` frames simulated by ``tools/create_data.py synthetic`` (the dataset's own
    CLI) into a fresh temporary folder; returns it. Skips when open3d (the simulator's ray caster) is absent."""
    import pytest

    pytest.importorskip("open3d", reason="the LiDAR simulator needs open3d")
    root = tmp_path_factory.mktemp("synthetic")
    subprocess.run([sys.executable, str(ROOT / "tools" / "create_data.py"), "synthetic", "--out", str(root),
                    "--train", str(n_train), "--val", str(n_val), "--seed", str(seed)], check=True, capture_output=True)
    return root


def make_tiny_dataset(root, n_train=4, n_val=3, seed=0):
    """Writes ``<root>/{train,val}_infos.json`` and the frame files; returns ``root``."""
    from pc3d.datasets.simulator.writer import save_frame, write_infos

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        frames = []
        for i in range(n):
            fid = f"{split}_{i:06d}"
            frame = _frame(rng, fid, seed * 1000 + i)
            save_frame(root / split / f"{fid}.npz", frame)
            frames.append({"frame_id": fid, "path": f"{split}/{fid}.npz", "seed": frame["seed"],
                           "num_points": len(frame["points"]), "num_boxes": len(frame["gt_boxes"]),
                           "num_empty_boxes": 0})
        write_infos(root, split, frames, {"generator": "tests/engine_utils.py", "seed": seed})
    return root


CONFIG = """
default_scope = 'pc3d'
pc_range = {pc_range}
voxel = [0.64, 0.64, 6.0]
model = dict(
    type='CenterPoint',
    data_preprocessor=dict(type='PointsDataPreprocessor'),
    voxelizer=dict(type='HardVoxelizer', voxel_size=voxel, pc_range=pc_range, max_points=8, max_voxels=(4000, 4000)),
    voxel_encoder=dict(type='PillarEncoder', in_channels=5, out_channels=8, voxel_size=voxel, pc_range=pc_range),
    bev=dict(type='BEVScatter', in_channels=8),
    backbone2d=dict(type='SECONDBackbone', in_channels=8, out_channels=(8, 16), layer_nums=(1, 1), layer_strides=(1, 2)),
    neck=dict(type='SECONDFPN', in_channels=(8, 16), out_channels=(8, 8), upsample_strides=(1, 2)),
    head=dict(type='CenterHead', in_channels=16, num_classes=3, pc_range=pc_range, voxel_size=voxel, out_size_factor=1,
              shared_channels=8, head_channels=8,
              test_cfg=dict(score_threshold=0.0, pre_max_size=100, post_max_size=50, nms_iou_threshold=[0.2, 0.2, 0.2])))
train_pipeline = [
    dict(type='RangeFilter', point_cloud_range=pc_range),
    dict(type='RandomFlip', flip_x_prob=0.5, flip_y_prob=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=(-0.785, 0.785), scale_range=(0.95, 1.05)),
    dict(type='RangeFilter', point_cloud_range=pc_range),
    dict(type='PointShuffle'),
]
test_pipeline = [dict(type='RangeFilter', point_cloud_range=pc_range)]
train_dataloader = dict(
    batch_size=2, num_workers={num_workers}, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type='SyntheticDataset', data_root={data_root!r}, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False), collate_fn=dict(type='pc3d_collate_batch'),
    dataset=dict(type='SyntheticDataset', data_root={data_root!r}, split='val', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='WaymoMetric')
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [dict(type='OneCycleLR', eta_max=3e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
                        by_epoch=True, convert_to_iter_based=True, begin=0, end={max_epochs})]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs={max_epochs}, val_interval={val_interval})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch={ckpt_by_epoch}, interval={ckpt_interval}, max_keep_ckpts=-1,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = {custom_hooks}
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0), dist_cfg=dict(timeout=120))
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
log_processor = dict(type='LogProcessor', window_size=1, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed={seed}, deterministic={deterministic})
"""


def write_tiny_config(path, data_root, max_epochs=1, val_interval=100, ckpt_by_epoch=True, ckpt_interval=1,
                      custom_hooks=(), num_workers=0, seed=0, deterministic=True, pc_range=TINY_RANGE):
    """Writes a tiny training config (python, no ``_base_``) to ``path`` and returns ``path``."""
    Path(path).write_text(CONFIG.format(
        data_root=str(data_root), max_epochs=max_epochs, val_interval=val_interval, ckpt_by_epoch=ckpt_by_epoch,
        ckpt_interval=ckpt_interval, custom_hooks=list(custom_hooks), num_workers=num_workers, seed=seed,
        deterministic=deterministic, pc_range=list(pc_range)))
    return path


def tool_env():
    """Environment for tools/*.py subprocesses: this checkout first, one thread (stable timings and
    per-thread float reduction order)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONHASHSEED"] = "0"
    return env


def run_tool(args, timeout=300, check=True, **kwargs):
    """Runs ``python tools/<args>`` and returns the CompletedProcess (stdout/stderr captured)."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=tool_env(), capture_output=True,
                          text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def torchrun(nproc, args, timeout=300, check=True):
    """Runs ``torchrun --nproc_per_node=nproc`` (module form) on ``args`` on a free local port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return run_tool(["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
                     f"--master_port={port}", *args], timeout=timeout, check=check)


def load_state_dict(path):
    """The model state_dict of an mmengine checkpoint (weights_only load)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from pc3d.engine.checkpoint import allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def train_in_process(argv):
    """``tools/train.py`` main(argv) in this process; returns the Runner (message hub, model)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pc3d_tools_train", ROOT / "tools" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in argv])


def losses(runner):
    """The per-iteration training losses recorded by the runner's message hub, (iters,) float64."""
    return runner.message_hub.get_scalar("train/loss").data[0].copy()


def model_state(runner):
    """The trained model's state_dict (unwrapped), detached CPU copies."""
    from mmengine.model import is_model_wrapper

    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def assert_state_equal(a, b):
    """Bit-for-bit equality of two state_dicts."""
    import torch

    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"{len(diff)} tensors differ, e.g. {diff[:5]}"
