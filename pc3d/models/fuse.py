"""Inference-time folding of BatchNorm into the preceding convolution / linear layer.

An eval-mode BN is an affine map per channel, so ``BN(conv(x))`` equals one conv with rescaled weights
and a bias: the BN pass over every (large) BEV map disappears. Only modules in eval mode are folded
(a training BN uses batch statistics, which no weight can encode), and only where the BN directly
follows the layer inside an ``nn.Sequential`` (the pattern of pc3d's 2D backbone, neck, head and VFE).
"""
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

_PAIRS = ((nn.Conv2d, nn.BatchNorm2d), (nn.ConvTranspose2d, nn.BatchNorm2d), (nn.Conv1d, nn.BatchNorm1d),
          (nn.Linear, nn.BatchNorm1d))


def _fusable(layer: nn.Module, bn: nn.Module) -> bool:
    return (any(type(layer) is a and type(bn) is b for a, b in _PAIRS) and not layer.training and not bn.training
            and bn.track_running_stats and bn.running_mean is not None)


@torch.no_grad()
def fuse_conv_bn(model: nn.Module) -> int:
    """Folds every eval-mode ``BatchNorm`` that follows a Conv1d/Conv2d/ConvTranspose2d/Linear in an
    ``nn.Sequential`` of ``model`` into that layer (in place; the BN becomes ``nn.Identity``). Call it
    after ``model.eval()`` and after loading weights. Returns how many BNs were folded. Outputs equal
    the unfused model's up to float rounding."""
    count = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            layer, bn = seq._modules[a], seq._modules[b]
            if layer is None or bn is None or not _fusable(layer, bn):
                continue
            if isinstance(layer, nn.Linear):
                fused = fuse_linear_bn_eval(layer, bn)
            else:
                fused = fuse_conv_bn_eval(layer, bn, transpose=isinstance(layer, nn.ConvTranspose2d))
            seq._modules[a], seq._modules[b] = fused, nn.Identity()
            count += 1
    return count
