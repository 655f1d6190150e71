"""Start a training run from the weights another seed would give (``tools/train.py --init-seed N``).

A run's seed draws both the model's initial weights and the data order / augmentation. To tell which of
the two makes a run good or bad, ``--seed B --init-seed A`` trains on seed B's data stream from seed A's
initial weights: the weights are built here under seed A exactly as the Runner builds them (the same
seeding as mmengine's ``set_random_seed``, then ``MODELS.build`` and ``init_weights``), written to the work
dir and handed to the Runner as ``load_from``, which loads them after its own (seed-B) initialisation
without drawing from any random generator. So seed B's data stream is untouched, and ``--init-seed B``
reproduces the plain seed-B run exactly.

``--init-seed-modules backbone3d ...`` narrows the swap to those modules (dotted prefixes of the model's
state_dict keys): they start from seed A's weights and everything else from seed B's own, which tells
which part of a bad initialisation makes the run bad.
"""
import os
import os.path as osp
import random
from typing import Optional, Sequence

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


def _module_keys(state: dict, module: str) -> list:
    """Keys of ``state`` inside ``module`` (a dotted prefix of the keys, or one whole key)."""
    return [k for k in state if k == module or k.startswith(module + ".")]


def mix_initial_state(cfg, seed: int, modules: Sequence[str], run_seed: int) -> dict:
    """Seed ``run_seed``'s initial state_dict with the tensors of ``modules`` taken from seed ``seed``'s."""
    state = initial_state_dict(cfg, run_seed)
    donor = initial_state_dict(cfg, seed)
    for module in modules:
        keys = _module_keys(state, module)
        if not keys:
            top = sorted({k.split(".")[0] for k in state})
            raise ValueError(f"--init-seed-modules: {module!r} names no weights of the model "
                             f"(its top-level modules: {', '.join(top)})")
        for k in keys:
            state[k] = donor[k]
    return state


def use_init_seed(cfg, seed: int, modules: Optional[Sequence[str]] = None) -> str:
    """Writes seed ``seed``'s initial weights into ``cfg.work_dir`` and points ``cfg.load_from`` at them.

    With ``modules``, only those modules take seed ``seed``'s weights and the rest the run's own seed's
    (``cfg.randomness.seed``, which must then be set). Returns the checkpoint path. Refuses a config that
    already loads or resumes weights (they would replace the initialisation anyway). One file per rank
    (``LOCAL_RANK``/``RANK``), so processes of a multi-process run never write the same file."""
    if cfg.get("resume") or cfg.get("load_from"):
        raise ValueError(f"--init-seed replaces the initial weights; it cannot be combined with resume/load_from "
                         f"(load_from={cfg.get('load_from')!r}, resume={cfg.get('resume')!r})")
    run_seed = (cfg.get("randomness") or {}).get("seed")
    if modules and run_seed is None:
        # Without a fixed seed mmengine draws one inside the Runner, so the rest of the weights are unknown here.
        raise ValueError("--init-seed-modules mixes two seeds' weights; give the run's own with --seed")
    # Building the model draws from the global generators; their state is put back so that nothing
    # before the Runner's own seeding sees a difference.
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        state = mix_initial_state(cfg, seed, modules, run_seed) if modules else initial_state_dict(cfg, seed)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    rank = os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))
    os.makedirs(cfg.work_dir, exist_ok=True)
    name = f"init_seed{seed}" + (f"_into_seed{run_seed}" if modules else "")
    path = osp.join(cfg.work_dir, f"{name}_rank{rank}.pth")
    meta = {"init_seed": int(seed), "init_seed_modules": list(modules or []), "seed": run_seed}
    atomic_write(path, lambda fh: torch.save({"state_dict": state, "meta": meta}, fh))
    cfg.load_from = path
    return path
