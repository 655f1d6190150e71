"""Resuming after a crash: choosing a loadable checkpoint, and an epoch loop that resumes mid-epoch.

mmengine's ``EpochBasedTrainLoop`` resumes at the start of the checkpoint's epoch: a checkpoint written
every k iterations (``CheckpointHook(by_epoch=False)``) in the middle of an epoch would make it train
that epoch's first batches twice. ``ResumableEpochBasedTrainLoop`` instead continues with the next
batch, and makes the continuation identical to the uninterrupted run:
- each epoch's data order and DataLoader worker seeds are a function of (seed, epoch, rank) only (the
  sampler is seeded by ``DistSamplerSeedHook``; the loop seeds the DataLoader's generator);
- the batches already trained are loaded again and dropped (so each worker's augmentation RNG advances
  exactly as before), then the checkpoint's RNG states (python, numpy, torch; written by
  ``ResumeStateHook``) are restored.
Bit-exact continuation holds for ``num_workers=0`` or non-persistent workers (persistent workers carry
RNG state across epochs that a new process does not have) and, in multi-process runs, for rank 0 (the
checkpoint holds rank 0's RNG state).
"""
import glob
import os
import os.path as osp
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop

from pc3d.registry import HOOKS


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be loaded (truncated, corrupt, not a checkpoint)."""


def check_checkpoint(path: str) -> dict:
    """Loads ``path`` with ``torch.load(weights_only=True)`` and checks it is an mmengine checkpoint.

    Returns its ``meta`` dict. Raises ``CheckpointError`` naming the file and the reason (missing,
    truncated or corrupt zip, not a dict with ``state_dict`` and ``meta``).
    """
    from .checkpoint import allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    if not osp.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, zipfile errors...
        reason = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), None)
        if reason is not None:  # a readable file holding a pickled class or function that is not allow-listed
            raise CheckpointError(f"checkpoint {path} holds objects that torch.load(weights_only=True) refuses "
                                  f"({reason}); load it with weights_only=False only if you trust its source") from e
        raise CheckpointError(f"checkpoint {path} ({osp.getsize(path)} bytes) cannot be loaded: it is truncated "
                              f"or corrupt ({type(e).__name__}: {str(e).splitlines()[-1][:200] if str(e) else ''})") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "meta" not in ckpt:
        raise CheckpointError(f"checkpoint {path} is not an mmengine training checkpoint "
                              f"(keys {sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__})")
    return ckpt["meta"]


def _candidates(work_dir: str) -> List[str]:
    """The work dir's checkpoints, the one named by ``last_checkpoint`` first, then newest first."""
    found = sorted(glob.glob(osp.join(work_dir, "*.pth")), key=osp.getmtime, reverse=True)
    last = osp.join(work_dir, "last_checkpoint")
    if osp.isfile(last):
        with open(last) as f:
            named = f.read().strip()
        if named:
            named = named if osp.isabs(named) else osp.join(work_dir, named)
            found = [named] + [p for p in found if osp.abspath(p) != osp.abspath(named)]
    return found


def find_resume_checkpoint(work_dir: str, logger=None) -> Optional[str]:
    """The newest loadable checkpoint of ``work_dir``: the one ``last_checkpoint`` names, or, when that is
    missing, truncated or corrupt (a kill while writing it), the most recently written ``*.pth`` that
    loads. Each skipped file is reported through ``logger.warning`` (or ``warnings.warn``).
    Returns None when there is no loadable checkpoint."""
    for path in _candidates(work_dir):
        try:
            check_checkpoint(path)
            return path
        except CheckpointError as e:
            msg = f"skipping checkpoint for resume: {e}"
            if logger is not None:
                logger.warning(msg)
            else:
                import warnings

                warnings.warn(msg)
    return None


def _rng_state() -> dict:
    np_state = np.random.get_state()
    py_version, py_words, py_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
             "python": {"version": py_version, "words": torch.tensor(py_words, dtype=torch.int64),
                        "gauss": py_gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(w) for w in p["words"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _drop_callables(checkpoint: dict) -> None:
    """Removes functions from the param scheduler states: mmengine's ``OneCycleParamScheduler`` keeps its
    bound ``anneal_func`` in ``state_dict()``, which pickles as ``getattr`` and makes the whole checkpoint
    unreadable with ``weights_only=True``. The scheduler rebuilt from the config has the same function."""
    groups = checkpoint.get("param_schedulers")
    lists = groups.values() if isinstance(groups, dict) else [groups] if groups else []
    for states in lists:
        for state in states:
            for key in [k for k, v in state.items() if callable(v)]:
                del state[key]


@HOOKS.register_module()
class ResumeStateHook(Hook):
    """Makes checkpoints resumable exactly and loadable with ``weights_only=True``.

    Before a save: stores the python/numpy/torch(/cuda) RNG states in ``meta['rng_state']`` (tensors and
    plain numbers) and drops functions from the scheduler states (see ``_drop_callables``). After a
    resume: keeps the RNG states for ``ResumableEpochBasedTrainLoop``, which restores them where the
    interrupted run stopped. The loop adds this hook itself when the config does not list it."""

    priority = "VERY_LOW"

    def __init__(self):
        self.loaded_state = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {})["rng_state"] = _rng_state()
        _drop_callables(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.loaded_state = checkpoint.get("meta", {}).get("rng_state")


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes in the middle of an epoch (see the module docstring).
    Same arguments as mmengine's loop."""

    def __init__(self, runner, dataloader, max_epochs: int, **kwargs):
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        self._rng_hook = next((h for h in runner.hooks if isinstance(h, ResumeStateHook)), None)
        if self._rng_hook is None:
            self._rng_hook = ResumeStateHook()
            runner.register_hook(self._rng_hook)

    def _seed_epoch(self) -> None:
        # Worker seeds come from the DataLoader's generator at each new iterator: seed it from
        # (seed, epoch, rank) so they do not depend on how much of torch's global stream was used.
        seed = self.runner.seed if self.runner.seed is not None else 0
        gen = torch.Generator()
        gen.manual_seed((int(seed) * 1000003 + self._epoch * 8191 + self.runner.rank) % (2 ** 63))
        self.dataloader.generator = gen

    def run_epoch(self) -> None:
        self.runner.call_hook("before_train_epoch")
        self.runner.model.train()
        self._seed_epoch()
        done = self._iter - self._epoch * len(self.dataloader)  # batches of this epoch trained before a resume
        if done > 0:
            self.runner.logger.info(f"resuming epoch {self._epoch + 1} at batch {done + 1} of {len(self.dataloader)}: "
                                    f"reloading and dropping the {done} batches already trained")
        for idx, data_batch in enumerate(self.dataloader):
            if idx < done:
                if idx == done - 1:
                    self._restore_rng()
                continue
            self.run_iter(idx, data_batch)
        if done >= len(self.dataloader) > 0:  # checkpoint written after this epoch's last iteration
            self._restore_rng()
        self.runner.call_hook("after_train_epoch")
        self._epoch += 1

    def _restore_rng(self) -> None:
        state = self._rng_hook.loaded_state
        self._rng_hook.loaded_state = None
        if state is not None:
            _set_rng_state(state)


__all__ = ["CheckpointError", "ResumeStateHook", "ResumableEpochBasedTrainLoop", "check_checkpoint",
           "find_resume_checkpoint"]
