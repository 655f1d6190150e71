"""Start a training run from the weights another seed would give (``tools/train.py --init-seed N``).

A run's seed draws both the model's initial weights and the data order / augmentation. To tell which of
the two makes a run good or bad, ``--seed B --init-seed A`` trains on seed B's data stream from seed A's
initial weights: the weights are built here under seed A exactly as the Runner builds them (the same
seeding as mmengine's ``set_random_seed``, then ``MODELS.build`` and ``init_weights``), written to the work
dir and handed to the Runner as ``load_from``, which loads them after its own (seed-B) initialisation
without drawing from any random generator. So seed B's data stream is untouched, and ``--init-seed B``
reproduces the plain seed-B run exactly.
"""
import os
import os.path as osp
import random

import numpy as np
import torch

from pc3d.fileio import atomic_write


def initial_state_dict(cfg, seed: int) -> dict:
    """The model state_dict a Runner seeded with ``seed`` starts training from (CPU tensors)."""
    from mmengine.registry import DefaultScope

    from pc3d.registry import MODELS

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    scope = cfg.get("default_scope", "pc3d")
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    if hasattr(model, "init_weights"):
        model.init_weights()
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def use_init_seed(cfg, seed: int) -> str:
    """Writes seed ``seed``'s initial weights into ``cfg.work_dir`` and points ``cfg.load_from`` at them.

    Returns the checkpoint path. Refuses a config that already loads or resumes weights (they would
    replace the initialisation anyway). One file per rank (``LOCAL_RANK``/``RANK``), so processes of a
    multi-process run never write the same file."""
    if cfg.get("resume") or cfg.get("load_from"):
        raise ValueError(f"--init-seed replaces the initial weights; it cannot be combined with resume/load_from "
                         f"(load_from={cfg.get('load_from')!r}, resume={cfg.get('resume')!r})")
    # Building the model draws from the global generators; their state is put back so that nothing
    # before the Runner's own seeding sees a difference.
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        state = initial_state_dict(cfg, seed)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    rank = os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))
    os.makedirs(cfg.work_dir, exist_ok=True)
    path = osp.join(cfg.work_dir, f"init_seed{seed}_rank{rank}.pth")
    atomic_write(path, lambda fh: torch.save({"state_dict": state, "meta": {"init_seed": int(seed)}}, fh))
    cfg.load_from = path
    return path
