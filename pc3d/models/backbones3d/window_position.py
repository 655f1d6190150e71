"""Learned position encoding of a voxel's place inside its attention window, after DSVT's.

``MLP(relative position)`` is added to queries and keys, where the relative position is the voxel's
offset from its window's centre divided by the window's size, so every coordinate lies in (-0.5, 0.5)
whatever the window. DSVT itself (``dsvt.py``) embeds the unscaled offset ``c - W/2``
with a BatchNorm in its MLP, as its released code does.
"""
from typing import Sequence

import torch
from torch import nn


def window_relative_position(coords: torch.Tensor, window: Sequence[int], shift: Sequence[int],
                             ndim: int) -> torch.Tensor:
    """In-window position of each voxel, centred and divided by the window size.

    Args:
        coords: (V, 4) int32 voxel coords [b, z, y, x].
        window: (Wz, Wy, Wx) window size in voxels.
        shift: (dz, dy, dx) added to the coords before cutting windows (the partition's shift).
        ndim: 2 for [x, y], 3 for [x, y, z].

    Returns:
        (V, ndim) float32 in (-0.5, 0.5), columns in x, y(, z) order.
    """
    c = coords[:, 1:].long() + torch.tensor(tuple(shift), device=coords.device)
    w = torch.tensor(tuple(window), device=coords.device)
    rel = ((c % w).float() - (w.float() - 1) / 2) / w.float()  # (V, 3) in z, y, x
    return rel[:, [2, 1, 0]][:, :ndim]


class PositionMLP(nn.Module):
    """In-window position (V, ndim) float32 [x, y(, z)] (from :func:`window_relative_position`) -> (V, C)."""

    def __init__(self, ndim: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(ndim, channels), nn.LayerNorm(channels), nn.ReLU(inplace=True),
                                 nn.Linear(channels, channels))

    def forward(self, rel: torch.Tensor) -> torch.Tensor:
        return self.net(rel)
