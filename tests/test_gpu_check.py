"""tools/gpu_check.sh and its Python half: the parts that run without a GPU (the script's syntax and steps, the
training loop and the latency timer on the CPU)."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT
from engine_utils import simulate_with_cli
from test_tools import _tiny_config


def test_script_is_valid_bash_and_runs_every_step():
    subprocess.run(["bash", "-n", str(ROOT / "tools" / "gpu_check.sh")], check=True)
    text = (ROOT / "tools" / "gpu_check.sh").read_text()
    for step in ("setup.py build_ext", "tests/test_cuda_ops.py", "gpu_check.py train", "gpu_check.py latency"):
        assert step in text


def _gpu_check(*args):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def test_train_loop_runs_on_cpu_and_keeps_every_loss(tmp_path_factory, tmp_path):
    data_root = simulate_with_cli(tmp_path_factory, 2, 1, seed=4)
    config = _tiny_config(tmp_path / "tiny.py", data_root)
    out = tmp_path / "train.json"
    _gpu_check("train", "--config", str(config), "--data-root", str(data_root), "--iters", "5", "--workers", "0",
               "--device", "cpu", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["iters"] == 5 and len(result["loss"]) == 5
    assert all(v == v and v > 0 for v in result["loss"])  # finite, positive detection losses
    assert result["host_syncs_per_iter"] is None  # counted on CUDA only


@pytest.mark.slow
def test_latency_timer_on_cpu(tmp_path):
    out = tmp_path / "latency.json"
    _gpu_check("latency", "--configs", "flatformer_waymo", "--points", "20000", "--warmup", "0", "--repeats", "1",
               "--device", "cpu", "--out", str(out))
    row = json.loads(out.read_text())["rows"][0]
    assert row["config"] == "flatformer_waymo" and row["fp32_ms"] > 0 and row["amp_ms"] > 0


def test_detector_decodes_in_float32_under_autocast(tmp_path):
    # Under AMP the head's maps come out in bfloat16/float16; decoding and NMS must still run (in float32).
    import torch

    from pc3d.apis import init_model

    model = init_model(str(_tiny_config(tmp_path / "tiny.py", tmp_path)))
    points = torch.rand(3000, 6) * torch.tensor([0.0, 40.0, 40.0, 4.0, 1.0, 1.0]) - torch.tensor([0, 20.0, 20.0, 2, 0, 0])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        maps = model(dict(points=points, batch_size=1), [{}], mode="tensor")
        result = model(dict(points=points, batch_size=1), [{}], mode="predict")[0]
    assert any(t.dtype == torch.bfloat16 for t in _tensors(maps))
    assert result["pred_boxes"].dtype == torch.float32 and result["pred_scores"].dtype == torch.float32


def _tensors(tree):
    import torch

    if isinstance(tree, torch.Tensor):
        return [tree]
    values = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, (list, tuple)) else []
    return [t for v in values for t in _tensors(v)]
