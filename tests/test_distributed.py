"""Multi-process training on CPU (gloo): DDP replicas stay bit-identical, CPU SyncBN equals BN over the
union of the ranks' batches, and a torchrun run of tools/train.py evaluates exactly like a
single-process evaluation of the same checkpoint."""
import json
import os
import pickle
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_utils import ROOT, make_tiny_dataset, run_tool, torchrun, write_tiny_config  # noqa: E402


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir):
    """One rank: CPU SyncBN vs BN on the gathered batch, then 3 DDP steps with the consistency hook."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from mmengine.config import Config

    from pc3d.engine.consistency import ParameterConsistencyHook
    from pc3d.engine.distributed import PC3DDistributedDataParallel, setup_distributed, teardown_distributed

    cfg = Config(dict(launcher="pytorch", env_cfg=dict(dist_cfg=dict())))
    setup_distributed(cfg)
    result = {"backend": cfg.env_cfg.dist_cfg.backend, "wrapper": cfg.model_wrapper_cfg["type"]}

    torch.manual_seed(0)  # same initial weights; per-rank data below
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.LazyLinear(2))
    model(torch.zeros(2, 3, 6, 6))
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # what mmengine does for sync_bn='torch'
    ddp = PC3DDistributedDataParallel(model)
    result["bn_class"] = type(ddp.module[1]).__name__
    # SyncBN output on this rank's share == BN (training mode) over all ranks' inputs.
    gen = torch.Generator().manual_seed(100)
    xs = [torch.randn(3 + r, 3, 6, 6, generator=gen) * (r + 1) for r in range(world)]  # unequal batches
    before = {k: v.clone() for k, v in model[1].state_dict().items()}
    y = ddp.module[1](ddp.module[0](xs[rank])).detach()
    ref_bn = torch.nn.BatchNorm2d(4)
    ref_bn.load_state_dict(before)
    with torch.no_grad():
        ref = ref_bn(ddp.module[0](torch.cat(xs)))
    start = sum(len(x) for x in xs[:rank])
    result["syncbn_max_err"] = float((y - ref[start:start + len(xs[rank])]).abs().max())
    result["running_mean_err"] = float((ddp.module[1].running_mean - ref_bn.running_mean).abs().max())

    class FakeRunner:  # what the hook reads from mmengine's Runner
        iter, model = 0, ddp

    hook = ParameterConsistencyHook(interval=1, check_buffers=True)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    for step in range(3):
        x = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(10 * step + rank))
        loss = ddp(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        FakeRunner.iter = step
        hook.after_train_iter(FakeRunner, step)
    result["records"] = hook.records
    # A replica that drifts (a rank-dependent update outside DDP) is caught at the next check.
    with torch.no_grad():
        next(ddp.module.parameters()).add_(float(rank))
    FakeRunner.iter = 3
    try:
        hook.after_train_iter(FakeRunner, 3)
        result["drift_error"] = None
    except RuntimeError as e:
        result["drift_error"] = str(e)
    with open(Path(out_dir) / f"rank{rank}.json", "w") as f:
        json.dump(result, f)
    del ddp, model, hook, opt, FakeRunner  # nothing that references the group outlives it
    teardown_distributed()


def test_ddp_on_cpu_replicas_identical_and_sync_bn(tmp_path):
    world = 2
    mp.start_processes(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, start_method="spawn")
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    for r in results:
        assert r["backend"] == "gloo" and r["wrapper"] == "PC3DDistributedDataParallel"
        assert r["bn_class"] == "CPUSyncBatchNorm"
        assert r["syncbn_max_err"] < 1e-5, r["syncbn_max_err"]
        assert r["running_mean_err"] < 1e-6
        assert [rec["iter"] for rec in r["records"]] == [1, 2, 3, 4]
        for rec in r["records"][:3]:  # every rank saw every rank's checksums, and they agree
            assert len(rec["params"]) == world and len(set(rec["params"])) == 1
            assert len(set(rec["buffers"])) == 1  # SyncBN keeps running statistics equal too
        assert len(set(r["records"][3]["params"])) == world  # the drifted replicas
        assert r["drift_error"] is not None and "diverged after iteration 4" in r["drift_error"]
    assert results[0]["records"] == results[1]["records"]
    # The parameters changed between steps (the checksum tracks them).
    assert len({rec["params"][0] for rec in results[0]["records"][:3]}) == 3


def test_setup_distributed_backend_follows_device(monkeypatch):
    from mmengine.config import Config

    from pc3d.engine.distributed import setup_distributed

    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    cfg = Config(dict(launcher="none"))
    setup_distributed(cfg)
    assert "model_wrapper_cfg" not in cfg  # single process: untouched
    cfg = Config(dict(launcher="pytorch", env_cfg=dict(dist_cfg=dict(backend="nccl"))))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="nccl.*needs CUDA"):
            setup_distributed(cfg)
    cfg = Config(dict(launcher="pytorch", env_cfg=dict(dist_cfg=dict())))
    with pytest.raises(RuntimeError, match="rendezvous variables"):  # not started by torchrun
        setup_distributed(cfg)
    assert cfg.env_cfg.dist_cfg.backend == ("nccl" if torch.cuda.is_available() else "gloo")
    with pytest.raises(ValueError, match="launcher must be one of"):
        setup_distributed(Config(dict(launcher="mpi")))


def test_teardown_distributed_destroys_the_group_and_is_a_noop_without_one(tmp_path):
    from pc3d.engine import teardown_distributed

    teardown_distributed()  # no process group: nothing to do, no error
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert torch.distributed.is_initialized()
    teardown_distributed()
    assert not torch.distributed.is_initialized()


@pytest.mark.slow
def test_torchrun_train_then_distributed_eval_equals_single_process(tmp_path):
    """tools/train.py under torchrun (2 gloo ranks, SyncBN) for 2 iterations with the consistency hook, a
    distributed evaluation of 3 frames (one rank gets a padded duplicate) at the end of training, and a
    single-process tools/test.py of the saved checkpoint: same frames, same predictions, same metrics."""
    data = make_tiny_dataset(tmp_path / "data", n_train=4, n_val=3)
    hooks = [dict(type="ParameterConsistencyHook", check_buffers=True, out_file="consistency.json"),
             dict(type="DumpMetricsHook", out_file="metrics.json")]
    cfg = write_tiny_config(tmp_path / "cfg.py", data, max_epochs=2, val_interval=2, custom_hooks=hooks)
    with open(cfg, "a") as f:
        f.write("sync_bn = 'torch'\n"
                f"val_evaluator = [dict(type='WaymoMetric'), dict(type='DumpResults', out_file_path={str(tmp_path / 'dist.pkl')!r})]\n"
                f"test_evaluator = [dict(type='WaymoMetric'), dict(type='DumpResults', out_file_path={str(tmp_path / 'single.pkl')!r})]\n")
    proc = torchrun(2, [ROOT / "tools" / "train.py", cfg, "--work-dir", tmp_path / "dist", "--launcher", "pytorch"])
    assert "13 SyncBatchNorm layers synchronised over gloo" in proc.stdout + proc.stderr
    cons = json.loads((tmp_path / "dist" / "consistency.json").read_text())
    assert cons["world_size"] == 2 and [r["iter"] for r in cons["records"]] == [1, 2]
    assert all(len(set(r["params"])) == 1 and len(set(r["buffers"])) == 1 for r in cons["records"])
    run_tool([ROOT / "tools" / "test.py", cfg, tmp_path / "dist" / "epoch_2.pth", "--work-dir", tmp_path / "single"])
    dist_res = pickle.loads((tmp_path / "dist.pkl").read_bytes())
    single_res = pickle.loads((tmp_path / "single.pkl").read_bytes())
    assert [r["frame_id"] for r in dist_res] == [r["frame_id"] for r in single_res] == [f"val_{i:06d}" for i in range(3)]
    for a, b in zip(dist_res, single_res):
        assert len(a["pred_boxes"]) > 0
        torch.testing.assert_close(a["pred_boxes"], b["pred_boxes"])
        torch.testing.assert_close(a["pred_scores"], b["pred_scores"])
        assert torch.equal(a["pred_labels"], b["pred_labels"])
    dist_metrics = json.loads((tmp_path / "dist" / "metrics.json").read_text())[-1]
    single_metrics = json.loads((tmp_path / "single" / "metrics.json").read_text())[-1]
    for key in dist_metrics:
        if key not in ("mode", "iter"):
            assert dist_metrics[key] == pytest.approx(single_metrics[key], abs=1e-6), key
