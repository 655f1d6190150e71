"""Run a trained detector on raw point clouds without the training machinery."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from pc3d.registry import MODELS

from ._config import load_config
from .backbone import PointCloudBackbone


def init_model(config, checkpoint: Optional[str] = None, device: Union[str, torch.device] = "cpu",
               fuse_conv_bn: bool = False) -> nn.Module:
    """Builds the detector of ``config`` (path, dict or mmengine Config), loads ``checkpoint`` (an mmengine
    checkpoint with a ``state_dict``, or a bare state dict) when given, and returns it in eval mode on
    ``device``. The config is kept as ``model.cfg``. ``fuse_conv_bn`` folds the BatchNorms into their
    convolutions (faster inference, same outputs up to rounding; the model can no longer be trained)."""
    cfg = load_config(config)
    if "model" not in cfg:
        raise ValueError("config has no 'model' entry")
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from pc3d.engine.checkpoint import allow_mmengine_checkpoints

        allow_mmengine_checkpoints()  # mmengine checkpoints carry a MessageHub: allow-list it, keep weights_only
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        model.load_state_dict(state, strict=True)
    model.cfg = cfg
    model = model.to(device).eval()
    if fuse_conv_bn:
        from pc3d.models.fuse import fuse_conv_bn as fuse

        fuse(model)
    return model


@torch.no_grad()
def inference_detector(model: nn.Module,
                       points: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Union[Dict, List[Dict]]:
    """Detects objects in one point cloud or a list of them.

    Args:
        model: from :func:`init_model`.
        points: (N, C) float32 [x, y, z, intensity, elongation, ...] in the ego/LiDAR frame (C = the
            model's encoder input), or a list of such clouds. Numpy arrays are accepted.

    Returns:
        per cloud a dict: ``boxes (K, 7)`` float32 (x, y, z, dx, dy, dz, heading) box centre, metres, heading
        = yaw about +z from +x, CCW, in [-pi, pi); ``scores (K,)`` float32 in [0, 1]; ``labels (K,)`` int64
        class index (0 Vehicle, 1 Pedestrian, 2 Cyclist for the Waymo-style configs). A single cloud gives
        a single dict, a list gives a list.
    """
    single = not isinstance(points, (list, tuple))
    clouds = [torch.as_tensor(p) for p in ([points] if single else points)]
    device = next(model.parameters()).device
    batched, batch_size = PointCloudBackbone.batch_points([c.to(device) for c in clouds])
    results = model(dict(points=batched, batch_size=batch_size), [{} for _ in clouds], mode="predict")
    out = [dict(boxes=r["pred_boxes"], scores=r["pred_scores"], labels=r["pred_labels"]) for r in results]
    return out[0] if single else out
