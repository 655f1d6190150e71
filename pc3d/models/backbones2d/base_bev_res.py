"""OpenPCDet's ``BaseBEVResBackbone``: stages of residual basic blocks, each map upsampled and concatenated."""
from collections.abc import Mapping
from typing import Dict, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN, + identity (or a 1x1 conv-BN projection), ReLU.

    (B, c_in, H, W) -> (B, c_out, H / stride, W / stride).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, projection: bool = False, eps: float = 1e-3,
                 momentum: float = 0.01):
        super().__init__()
        # One Sequential so that pc3d.models.fuse folds both BatchNorms into their convs for inference.
        self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                                      nn.BatchNorm2d(c_out, eps=eps, momentum=momentum), nn.ReLU(),
                                      nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(c_out, eps=eps, momentum=momentum))
        self.projection = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out, eps=eps, momentum=momentum))
                           if projection else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + (self.projection(x) if self.projection is not None else x))


@MODELS.register_module()
class BaseBEVResBackbone(nn.Module):
    """(B, in_channels, H, W) -> (B, sum(upsample_channels), H / s_0 * u_0, W / s_0 * u_0), the DSVT 2D backbone.

    Stage i opens with a :class:`BasicBlock` of stride ``layer_strides[i]`` and a 1x1 projection shortcut, then
    ``layer_nums[i]`` identity-shortcut blocks. Each stage's map goes through a deblock (a transposed conv of
    kernel = stride = ``upsample_strides[i]`` for strides >= 1, a strided conv of kernel = stride = 1 / u for
    fractions; then BN-ReLU, no bias), and the deblocks' outputs are concatenated along channels. With
    DSVT-P's values (strides 1, 2, 2; upsampling 1, 2, 4) every stage comes back to the input resolution:
    192 x 468 x 468 -> 384 x 468 x 468.

    The upsampling is part of this module (OpenPCDet's ``backbone_2d`` holds ``blocks`` and ``deblocks``), so a
    detector using it takes :class:`IdentityNeck` as its neck.

    Args:
        in_channels: channels of the BEV map.
        layer_nums: extra blocks per stage; layer_strides: stride of each stage's first block;
        num_filters: width per stage.
        upsample_strides: per stage, the factor back to the output stride; upsample_channels: its width.
        bn_eps, bn_momentum: BatchNorm2d settings (OpenPCDet: 1e-3, 0.01).
    """

    def __init__(self, in_channels: int, layer_nums: Sequence[int] = (1, 2, 2),
                 layer_strides: Sequence[int] = (1, 2, 2),
                 num_filters: Sequence[int] = (128, 128, 256), upsample_strides: Sequence[float] = (1, 2, 4),
                 upsample_channels: Sequence[int] = (128, 128, 128), bn_eps: float = 1e-3, bn_momentum: float = 0.01):
        super().__init__()
        lengths = [len(v) for v in (layer_nums, layer_strides, num_filters, upsample_strides, upsample_channels)]
        if len(set(lengths)) != 1:
            raise ValueError("BaseBEVResBackbone: layer_nums, layer_strides, num_filters, upsample_strides and "
                             f"upsample_channels need one entry per stage, got lengths {lengths}")
        bn = dict(eps=bn_eps, momentum=bn_momentum)
        self.blocks, self.deblocks = nn.ModuleList(), nn.ModuleList()
        c_prev = in_channels
        for n, s, c, u, c_up in zip(layer_nums, layer_strides, num_filters, upsample_strides, upsample_channels):
            self.blocks.append(nn.Sequential(BasicBlock(c_prev, c, int(s), projection=True, **bn),
                                             *[BasicBlock(c, c, **bn) for _ in range(int(n))]))
            if u >= 1:
                k = int(round(u))
                conv = nn.ConvTranspose2d(c, c_up, k, stride=k, bias=False)
            else:
                k = int(round(1 / u))
                conv = nn.Conv2d(c, c_up, k, stride=k, bias=False)
            self.deblocks.append(nn.Sequential(conv, nn.BatchNorm2d(c_up, **bn), nn.ReLU()))
            c_prev = c
        self.out_channels = int(sum(upsample_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ups = []
        for block, deblock in zip(self.blocks, self.deblocks):
            x = block(x)
            ups.append(deblock(x))
        return torch.cat(ups, dim=1) if len(ups) > 1 else ups[0]

    def convert_official_state(self, official: Mapping, source: str) -> Dict[str, torch.Tensor]:
        """OpenPCDet ``backbone_2d.*`` -> this module's state. OpenPCDet's block holds ``conv1``, ``bn1``, ``conv2``,
        ``bn2`` and the shortcut ``downsample_layer``; here they are ``residual.{0, 1, 3, 4}`` and ``projection``; the
        deblocks have the same names."""
        renames = {".residual.0.": ".conv1.", ".residual.1.": ".bn1.", ".residual.3.": ".conv2.",
                   ".residual.4.": ".bn2.", ".projection.": ".downsample_layer."}
        out = {}
        for key in self.state_dict():
            source = key
            for ours, theirs in renames.items():
                source = source.replace(ours, theirs)
            out[key] = official[source]
        return out


@MODELS.register_module()
class IdentityNeck(nn.Module):
    """A neck that returns its input: for 2D backbones that already resample and concatenate their stages
    (:class:`BaseBEVResBackbone`). (B, C, H, W) -> the same tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
