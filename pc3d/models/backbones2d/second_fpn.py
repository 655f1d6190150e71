"""SECOND FPN neck: bring every backbone stage to one stride with (de)convs, concatenate channels."""
from typing import List, Sequence

import torch
from torch import nn

from pc3d.registry import MODELS


@MODELS.register_module()
class SECONDFPN(nn.Module):
    """List of (B, in_channels[i], H_i, W_i) -> (B, sum(out_channels), H_out, W_out).

    Args:
        in_channels: channels of each backbone stage.
        out_channels: channels each stage contributes after resampling.
        upsample_strides: per stage, the factor to its common output stride: > 1 uses a transposed
            conv (upsample), 1 a 1x1 conv, and a fraction 1/k a strided k x k conv (downsample).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int], upsample_strides: Sequence[float]):
        super().__init__()
        if not (len(in_channels) == len(out_channels) == len(upsample_strides)):
            raise ValueError(f"in_channels, out_channels and upsample_strides must have equal lengths, got "
                             f"{len(in_channels)}, {len(out_channels)}, {len(upsample_strides)}")
        deblocks = []
        for c_in, c_out, s in zip(in_channels, out_channels, upsample_strides):
            if s >= 1:
                k = int(round(s))
                conv = nn.ConvTranspose2d(c_in, c_out, k, stride=k, bias=False)
            else:
                k = int(round(1 / s))
                conv = nn.Conv2d(c_in, c_out, k, stride=k, bias=False)
            deblocks.append(nn.Sequential(conv, nn.BatchNorm2d(c_out, eps=1e-3), nn.ReLU(inplace=True)))
        self.deblocks = nn.ModuleList(deblocks)
        self.out_channels = int(sum(out_channels))

    def forward(self, feats: List[torch.Tensor]) -> torch.Tensor:
        if len(feats) != len(self.deblocks):
            raise ValueError(f"SECONDFPN got {len(feats)} feature maps, configured for {len(self.deblocks)}")
        outs = [deblock(f) for deblock, f in zip(self.deblocks, feats)]
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
