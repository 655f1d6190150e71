"""SECOND-style 2D BEV backbone: stages of 3x3 conv-BN-ReLU, each opened by a strided conv."""
from typing import List, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out, eps=1e-3), nn.ReLU(inplace=True))


@MODELS.register_module()
class SECONDBackbone(nn.Module):
    """(B, in_channels, H, W) -> list of per-stage maps (B, out_channels[i], H / s_i, W / s_i).

    Args:
        in_channels: channels of the BEV map.
        out_channels: width per stage, e.g. (64, 128, 256).
        layer_nums: extra 3x3 convs per stage after its opening conv, e.g. (3, 5, 5).
        layer_strides: stride of each stage's opening conv, e.g. (2, 2, 2); s_i is their running product.
        residual: each conv-BN-ReLU whose output has its input's shape adds its input (``x = f(x) + x``), as the
            SECOND of the official FlatFormer detector (mit-han-lab/flatformer, ``residual=True``).
    """

    def __init__(self, in_channels: int, out_channels: Sequence[int] = (64, 128, 256),
                 layer_nums: Sequence[int] = (3, 5, 5), layer_strides: Sequence[int] = (2, 2, 2),
                 residual: bool = False):
        super().__init__()
        self.residual = bool(residual)
        if not (len(out_channels) == len(layer_nums) == len(layer_strides)):
            raise ValueError(f"out_channels, layer_nums and layer_strides must have equal lengths, got "
                             f"{len(out_channels)}, {len(layer_nums)}, {len(layer_strides)}")
        blocks, c_prev = [], in_channels
        for c, n, s in zip(out_channels, layer_nums, layer_strides):
            blocks.append(nn.Sequential(conv_bn_relu(c_prev, c, s), *[conv_bn_relu(c, c) for _ in range(n)]))
            c_prev = c
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = list(out_channels)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outs = []
        for block in self.blocks:
            if self.residual:
                for layer in block:
                    y = layer(x)
                    x = y + x if y.shape == x.shape else y
            else:
                x = block(x)
            outs.append(x)
        return outs
