"""tools/dist_train.sh and dist_test.sh hand the right torchrun command to tools/dist_launch.sh."""
import os
import subprocess

import pytest

from conftest import ROOT


def _run(script, *args, env_extra=None, tmp_path=None):
    fake = tmp_path / "fake_python"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')  # prints the argv torchrun would get
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), **(env_extra or {}))
    out = subprocess.run(["bash", str(ROOT / "tools" / script), *args], env=env, capture_output=True, text=True)
    return out.returncode, out.stdout.split("\n"), out.stderr


def test_dist_train_command(tmp_path):
    rc, argv, _ = _run("dist_train.sh", "cfg.py", "2", "--amp", env_extra={"NNODES": "2", "NODE_RANK": "1"},
                       tmp_path=tmp_path)
    assert rc == 0
    assert argv[:2] == ["-m", "torch.distributed.run"]
    assert {"--nnodes=2", "--node_rank=1", "--nproc_per_node=2", "--master_port=29500"} <= set(argv)
    i = argv.index(str(ROOT / "tools" / "train.py"))
    assert argv[i + 1:i + 5] == ["cfg.py", "--amp", "--launcher", "pytorch"]


def test_dist_test_command(tmp_path):
    rc, argv, _ = _run("dist_test.sh", "cfg.py", "ckpt.pth", "3", tmp_path=tmp_path)
    assert rc == 0 and "--nproc_per_node=3" in argv
    i = argv.index(str(ROOT / "tools" / "test.py"))
    assert argv[i + 1:i + 5] == ["cfg.py", "ckpt.pth", "--launcher", "pytorch"]


@pytest.mark.parametrize("script,args", [("dist_train.sh", ["cfg.py"]), ("dist_test.sh", ["cfg.py", "2"])])
def test_missing_arguments_print_usage(tmp_path, script, args):
    rc, _, err = _run(script, *args, tmp_path=tmp_path)
    assert rc == 2 and "usage:" in err
