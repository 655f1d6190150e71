"""Official checkpoints -> pc3d checkpoints.

An official checkpoint (OpenPCDet's ``{'model_state': ...}``, mmdet3d's ``{'state_dict': ...}``) is read with
``torch.load(weights_only=True)``; its tensors are grouped by their top-level module name (``backbone_3d.*``,
``middle_encoder.*``, ...) and each group is handed to the pc3d module that plays that part, which maps it onto
its own parameter names through its ``convert_official_state`` method::

    def convert_official_state(self, official: Mapping[str, Tensor], source: str) -> Dict[str, Tensor]:
        # official: the group's tensors, module prefix stripped; returns this module's state_dict entries

The framework checks the result strictly: every official tensor of a group must be read, every tensor of the
pc3d module must be produced, and shapes must agree; otherwise a :class:`CheckpointConversionError` lists the
offending keys. A checkpoint holding only some modules converts those completely and reports the pc3d modules it
left without weights (:attr:`ConversionResult.unconverted_modules`).
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn

# Per source: the container key holding the weights, the official top-level module -> pc3d detector attribute,
# and top-level keys that carry no weights (bookkeeping).
SOURCES: Dict[str, Dict] = {
    "openpcdet": dict(container="model_state",
                      modules={"vfe": "voxel_encoder", "backbone_3d": "backbone3d", "map_to_bev_module": "bev",
                               "backbone_2d": "backbone2d", "dense_head": "head"},
                      ignore=("global_step",)),
    "scatterformer": dict(container="model_state",
                          modules={"vfe": "voxel_encoder", "backbone_3d": "backbone3d", "map_to_bev_module": "bev",
                                   "backbone_2d": "backbone2d", "dense_head": "head"},
                          ignore=("global_step",)),
    "flatformer": dict(container="state_dict",
                       modules={"voxel_encoder": "voxel_encoder", "pts_voxel_encoder": "voxel_encoder",
                                "middle_encoder": "backbone3d", "pts_middle_encoder": "backbone3d",
                                "backbone": "backbone2d", "pts_backbone": "backbone2d", "neck": "neck",
                                "pts_neck": "neck", "bbox_head": "head", "pts_bbox_head": "head"},
                       ignore=()),
}


class CheckpointConversionError(ValueError):
    """An official checkpoint that cannot be mapped onto the pc3d model; the message names the file and keys."""


class _TrackedState(Mapping):
    """A read-only view of one module's official tensors that records which keys were read."""

    def __init__(self, tensors: Dict[str, torch.Tensor]):
        self._tensors = tensors
        self.read = set()

    def __getitem__(self, key: str) -> torch.Tensor:
        value = self._tensors[key]
        self.read.add(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


@dataclass
class ConversionResult:
    """``state_dict``: pc3d keys -> tensors for the converted modules; ``converted_modules`` / ``unconverted_modules``:
    pc3d detector attributes with / without weights from the checkpoint (parameter-free modules count as neither)."""
    state_dict: Dict[str, torch.Tensor]
    converted_modules: List[str] = field(default_factory=list)
    unconverted_modules: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.unconverted_modules


def _short(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_official_state(path, source: str) -> Dict[str, torch.Tensor]:
    """Reads the tensors of an official checkpoint file (``weights_only=True``: nothing in the file is executed).

    Returns the flat ``{key: Tensor}`` of the container entry ``SOURCES[source]['container']`` (a bare state dict is
    accepted too). Raises :class:`CheckpointConversionError` naming the file for a missing/truncated/non-checkpoint
    file and naming the first key whose value is not a tensor."""
    if source not in SOURCES:
        raise CheckpointConversionError(f"unknown source {source!r}; known: {sorted(SOURCES)}")
    path = Path(path)
    if not path.is_file():
        raise CheckpointConversionError(f"{path}: no such checkpoint file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, a non-allow-listed global
        raise CheckpointConversionError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: "
                                        f"{str(err).splitlines()[0] if str(err) else ''})") from err
    if not isinstance(raw, dict):
        raise CheckpointConversionError(f"{path}: holds a {type(raw).__name__}, not a checkpoint dict")
    container = SOURCES[source]["container"]
    if container in raw:
        state = raw[container]
    elif raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
        state = raw
    else:
        raise CheckpointConversionError(f"{path}: no '{container}' entry (top-level keys: {_short(raw)}); "
                                        f"is this a {source} checkpoint?")
    if not isinstance(state, dict):
        raise CheckpointConversionError(f"{path}: '{container}' is a {type(state).__name__}, not a dict of tensors")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointConversionError(f"{path}: key '{key}' holds a {type(value).__name__}, not a tensor")
    return state


def convert_state(official: Dict[str, torch.Tensor], model: nn.Module, source: str,
                  name: str = "checkpoint") -> ConversionResult:
    """Maps official tensors onto ``model`` (a pc3d detector built from its config). ``name`` is used in errors."""
    spec = SOURCES[source]
    groups: Dict[str, Dict[str, torch.Tensor]] = {}
    unknown = []
    for key, value in official.items():
        top, _, rest = key.partition(".")
        if top in spec["ignore"] and not rest:
            continue
        if top not in spec["modules"]:
            unknown.append(key)
            continue
        groups.setdefault(top, {})[rest] = value
    if unknown:
        raise CheckpointConversionError(f"{name}: official tensors with no place in the pc3d model: {_short(unknown)}")
    state: Dict[str, torch.Tensor] = {}
    converted = []
    for top, tensors in groups.items():
        attr = spec["modules"][top]
        module = getattr(model, attr, None)
        if module is None:
            raise CheckpointConversionError(f"{name}: official '{top}.*' ({len(tensors)} tensors, e.g. "
                                            f"'{top}.{next(iter(tensors))}') has no pc3d module '{attr}' in this config")
        if not hasattr(module, "convert_official_state"):
            raise CheckpointConversionError(f"{name}: pc3d module '{attr}' ({type(module).__name__}) cannot take "
                                            f"official '{top}.*' weights from {source}")
        tracked = _TrackedState(tensors)
        try:
            mapped = module.convert_official_state(tracked, source)
        except KeyError as err:
            raise CheckpointConversionError(f"{name}: '{top}.{err.args[0]}' expected by pc3d module '{attr}' "
                                            f"({type(module).__name__}) is missing: a checkpoint of another model "
                                            f"or another configuration?") from None
        unread = set(tensors) - tracked.read
        if unread:
            raise CheckpointConversionError(f"{name}: official tensors of '{top}' with no target in pc3d "
                                            f"'{attr}': {_short(top + '.' + k for k in unread)}")
        target = module.state_dict()
        missing = set(target) - set(mapped)
        extra = set(mapped) - set(target)
        if missing or extra:
            raise CheckpointConversionError(
                f"{name}: pc3d '{attr}' tensors with no source: {_short(attr + '.' + k for k in missing) or '-'}; "
                f"converted names unknown to pc3d: {_short(attr + '.' + k for k in extra) or '-'}")
        for key, value in mapped.items():
            if tuple(value.shape) != tuple(target[key].shape):
                raise CheckpointConversionError(f"{name}: shape of '{attr}.{key}' differs: official gives "
                                                f"{tuple(value.shape)}, pc3d expects {tuple(target[key].shape)}")
            state[f"{attr}.{key}"] = value.to(target[key].dtype).clone()
        converted.append(attr)
    unconverted = sorted({key.split(".")[0] for key in model.state_dict()} - set(converted))
    return ConversionResult(state, sorted(converted), unconverted)


def convert_checkpoint(src, config, source: str, dst: Optional[str] = None) -> Tuple[nn.Module, ConversionResult]:
    """Converts the official checkpoint ``src`` for the pc3d detector of ``config`` (path, dict or Config).

    Returns ``(model, result)``: the model (eval mode) with the converted weights loaded (strictly when the checkpoint
    was whole), and the :class:`ConversionResult`. With ``dst`` the model's whole state is written (atomically) as a
    pc3d checkpoint ``{'meta': {...}, 'state_dict': ...}`` that :func:`pc3d.apis.init_model` and ``tools/test.py``
    load strictly: the converted modules hold the official weights, the modules the checkpoint did not cover
    (``meta['unconverted_modules']``, e.g. everything but ``backbone3d`` for a backbone-only checkpoint) hold the
    initialisation the config builds, so they still need training."""
    from pc3d.fileio import atomic_write
    from pc3d.registry import MODELS

    from ._config import load_config

    cfg = load_config(config)
    model = MODELS.build(cfg.model)
    official = load_official_state(src, source)
    result = convert_state(official, model, source, name=str(src))
    model.load_state_dict(result.state_dict, strict=result.complete)
    model.eval()
    if dst is not None:
        checkpoint = dict(meta=dict(converted_from=str(src), source=source,
                                    unconverted_modules=result.unconverted_modules),
                          state_dict={k: v.detach().clone() for k, v in model.state_dict().items()})
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dst, lambda fh: torch.save(checkpoint, fh))
    return model, result
