"""``tools/train.py --init-seed A --seed B``: seed A's initial weights with seed B's data order and augmentation.
``--init-seed B`` reproduces the plain seed-B run bit for bit (so neither stream is disturbed); ``--init-seed A``
starts from exactly the weights a seed-A Runner builds; ``--init-seed-modules`` takes only the named modules from
seed A and the rest from seed B's own; loading or resuming weights as well is refused."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_utils import (assert_state_equal, load_state_dict, losses, make_tiny_dataset, model_state,  # noqa: E402
                          train_in_process, write_tiny_config)


def _runner_initial_weights(cfg_path, seed, work_dir):
    """The weights a Runner seeded with ``seed`` builds (before any training)."""
    from mmengine.config import Config

    from pc3d.engine import Runner

    cfg = Config.fromfile(str(cfg_path))
    cfg.work_dir, cfg.randomness = str(work_dir), dict(seed=seed)
    return {k: v.detach().clone() for k, v in Runner.from_cfg(cfg).model.state_dict().items()}


def test_init_seed_splits_weights_from_data(tmp_path, restore_torch_flags):
    torch.set_num_threads(1)
    data = make_tiny_dataset(tmp_path / "data", n_train=6, n_val=1)
    cfg = write_tiny_config(tmp_path / "cfg.py", data, max_epochs=1, ckpt_interval=100)
    runs = {}
    for name, extra in (("plain3", []), ("init3", ["--init-seed", 3]), ("init4", ["--init-seed", 4])):
        runner = train_in_process([cfg, "--work-dir", tmp_path / name, "--seed", 3, "--deterministic",
                                   "--cfg-options", f"experiment_name=init_{name}", *extra])
        runs[name] = (losses(runner), model_state(runner))
    # Seed 3 from seed 3's own weights: the same run, to the last bit.
    assert np.array_equal(runs["plain3"][0], runs["init3"][0])
    assert_state_equal(runs["plain3"][1], runs["init3"][1])
    # Seed 3's data from seed 4's weights: a different run, started from what a seed-4 Runner builds.
    assert not np.array_equal(runs["plain3"][0], runs["init4"][0])
    started = load_state_dict(tmp_path / "init4" / "init_seed4_rank0.pth")
    assert_state_equal(started, _runner_initial_weights(cfg, 4, tmp_path / "r4"))
    assert any(not torch.equal(started[k], v) for k, v in _runner_initial_weights(cfg, 3, tmp_path / "r3").items())


def test_init_seed_refuses_loaded_weights(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_val=1)
    cfg = write_tiny_config(tmp_path / "cfg.py", data)
    with pytest.raises(ValueError, match="init-seed"):
        train_in_process([cfg, "--work-dir", tmp_path / "w", "--init-seed", 1, "--cfg-options",
                          f"load_from={tmp_path / 'some.pth'}"])


def test_init_seed_modules_swaps_only_the_named_modules(tmp_path, restore_torch_flags):
    torch.set_num_threads(1)
    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_val=1)
    cfg = write_tiny_config(tmp_path / "cfg.py", data, max_epochs=1, ckpt_interval=100)
    train_in_process([cfg, "--work-dir", tmp_path / "mix", "--seed", 3, "--init-seed", 4,
                      "--init-seed-modules", "backbone2d", "neck.deblocks.0", "--cfg-options", "experiment_name=mix"])
    started = load_state_dict(tmp_path / "mix" / "init_seed4_into_seed3_rank0.pth")
    own, donor = (_runner_initial_weights(cfg, s, tmp_path / f"r{s}") for s in (3, 4))
    assert started.keys() == own.keys()
    swapped = [k for k in own if k.startswith(("backbone2d.", "neck.deblocks.0."))]
    assert swapped and len(swapped) < len(own)
    for k, v in started.items():
        assert torch.equal(v, donor[k] if k in swapped else own[k]), k
    # The two seeds differ in both parts, so the file really is a mixture.
    assert any(not torch.equal(own[k], donor[k]) for k in swapped)
    assert any(not torch.equal(own[k], donor[k]) for k in own if k not in swapped and own[k].is_floating_point())


def test_init_seed_modules_bad_input(tmp_path):
    from mmengine.config import Config

    from pc3d.engine.init_seed import use_init_seed

    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_val=1)
    cfg = write_tiny_config(tmp_path / "cfg.py", data)
    with pytest.raises(ValueError, match="'backbone3d' names no weights.*backbone2d"):
        train_in_process([cfg, "--work-dir", tmp_path / "w", "--seed", 1, "--init-seed", 2,
                          "--init-seed-modules", "backbone3d"])
    config = Config.fromfile(str(cfg))
    config.work_dir, config.randomness = str(tmp_path / "w2"), dict(seed=None)
    with pytest.raises(ValueError, match="--seed"):
        use_init_seed(config, 2, ["backbone2d"])
    with pytest.raises(SystemExit):  # argparse: --init-seed-modules without --init-seed
        train_in_process([cfg, "--work-dir", tmp_path / "w3", "--init-seed-modules", "backbone2d"])
