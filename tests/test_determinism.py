"""Determinism: two CPU training runs with the same seed (``--deterministic``) give bit-identical losses
and weights, with a DataLoader worker process (mmengine's worker_init_fn seeds) and random augmentation
(flip, rotation/scale, point shuffle); another seed gives other losses."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_utils import assert_state_equal, losses, make_tiny_dataset, model_state, train_in_process, write_tiny_config  # noqa: E402,E501


def test_same_seed_bit_identical_losses_and_weights(tmp_path, restore_torch_flags):
    torch.set_num_threads(1)
    data = make_tiny_dataset(tmp_path / "data", n_train=6, n_val=1)
    # deterministic=False in the config: --deterministic must switch it on.
    cfg = write_tiny_config(tmp_path / "cfg.py", data, max_epochs=1, num_workers=1, deterministic=False,
                            ckpt_interval=100)
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        runner = train_in_process([cfg, "--work-dir", tmp_path / name, "--seed", seed, "--deterministic",
                                   "--cfg-options", f"experiment_name=det_{name}"])
        assert torch.are_deterministic_algorithms_enabled()
        runs.append((losses(runner), model_state(runner)))
    (la, sa), (lb, sb), (lc, _) = runs
    assert len(la) == 3  # 6 frames, batch 2
    assert np.isfinite(la).all()
    assert np.array_equal(la, lb), (la, lb)  # bit-identical, not merely close
    assert_state_equal(sa, sb)
    assert not np.array_equal(la, lc)  # the seed does drive initialisation, order and augmentation
