"""Conditional position encoding by a submanifold convolution, shared by the three sparse transformers.

``x + Linear(Conv(LN(x)))`` (Point Transformer V3's xCPE): before a voxel attends, its features learn what
occupies the cells around it, the fine geometry a window's sinusoidal or learned position leaves out.
``Conv`` is depthwise (C x K weights) or full (C x C x K, as PTv3's). Not in the FlatFormer, DSVT or
ScatterFormer papers; measured in configs/compare/README.md. Under ``identity_init`` the backbones start
the linear at zero, so the encoding starts as the identity too.

``batchnorm=True`` (``cpe_batchnorm`` in FlatFormer) puts a BatchNorm between the conv and the linear,
``x + Linear(BN(Conv(LN(x))))``, so the conv's output no longer grows with its weights (as each conv of the
spconv baseline, which is followed by BatchNorm). Why: in FlatFormer's small-data runs this full conv's branch
ends 3.4-4.5 x the RMS of the features it adds to, and the larger it ends the worse the run
(configs/compare/README.md). Measured there: the branch shrinks to a third and FlatFormer's bad seed stays
bad (seed 3 0.456 against 0.436), and over seeds 0, 2, 3, 4 the mean moves -0.007: the large branch goes with a bad
run without making it. Off by default; not in PTv3.

``ConvStem`` is the same full conv used once, in place of a backbone's linear input projection (PTv3's
embedding), with BatchNorm and GELU instead of the residual; all three backbones take it as ``stem_kernel``.
"""
from typing import Optional, Sequence

import torch
from torch import nn

from .sparse_depthwise import DepthwiseSubmConv, SubmConv


def check_cpe_options(cpe_kernel: Optional[Sequence[int]], cpe_depthwise: bool, **shaping) -> None:
    """Raise a clear error for a malformed kernel, or for options that shape an encoding that is not built.

    ``shaping``: further options that only mean something with a kernel, name -> value (True = set).
    """
    if cpe_kernel is not None and len(cpe_kernel) != 3:
        raise ValueError(f"cpe_kernel must be (kz, ky, kx), got {tuple(cpe_kernel)}")
    set_options = (["cpe_depthwise=False"] if not cpe_depthwise else []) + \
        [f"{name}=True" for name, value in shaping.items() if value]
    if cpe_kernel is None and set_options:
        raise ValueError(f"{' and '.join(set_options)} shape the conv position encoding: set cpe_kernel too")


class ConvPositionEncoding(nn.Module):
    """``x + Linear(Conv(LN(x)))`` on a voxel list, Conv a depthwise or full submanifold conv: (V, C) -> (V, C).

    With ``batchnorm``: ``x + Linear(BN(Conv(LN(x))))`` (see the module docstring).

    forward(feats (V, C), table (V, K) from ``neighbor_table`` with ``self.conv.offsets``).
    """

    def __init__(self, channels: int, kernel_size: Sequence[int], depthwise: bool = True, batchnorm: bool = False):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = DepthwiseSubmConv(channels, kernel_size) if depthwise else \
            SubmConv(channels, channels, kernel_size)
        # BatchNorm over all voxels of the batch, as ConvStem's (a per-voxel norm would erase occupancy).
        self.out_norm = nn.BatchNorm1d(channels) if batchnorm else nn.Identity()
        self.proj = nn.Linear(channels, channels)

    def forward(self, feats: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return feats + self.proj(self.out_norm(self.conv(self.norm(feats), table)))


class ConvStem(nn.Module):
    """``GELU(BN(Conv(x)))``, Conv a full submanifold conv from C_in to C: (V, C_in) -> (V, C).

    Point Transformer V3's embedding; the spconv baseline's first layer but for GELU in place of ReLU: each voxel starts
    from the pattern of occupied cells around it rather than from its own points alone. BatchNorm (statistics
    over all voxels of the batch, as spconv's) keeps how much one voxel holds against another, which a
    per-voxel LayerNorm would erase.

    forward(feats (V, C_in), table (V, K) from ``neighbor_table`` with ``self.conv.offsets``).
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: Sequence[int]):
        super().__init__()
        if len(kernel_size) != 3:
            raise ValueError(f"stem_kernel must be (kz, ky, kx), got {tuple(kernel_size)}")
        self.conv = SubmConv(in_channels, channels, kernel_size)
        self.norm = nn.BatchNorm1d(channels)
        self.act = nn.GELU()

    def forward(self, feats: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(feats, table)))


def build_input_layer(in_channels: int, channels: int, stem_kernel: Optional[Sequence[int]]):
    """A backbone's first layer as ``(stem, input_proj)``: ``(ConvStem, Identity)`` with a kernel, else
    ``(None, Linear)`` (``Identity`` when the widths already match)."""
    if stem_kernel is not None:
        return ConvStem(in_channels, channels, stem_kernel), nn.Identity()
    return None, nn.Linear(in_channels, channels) if in_channels != channels else nn.Identity()


def build_cpes(count: int, channels: int, cpe_kernel: Optional[Sequence[int]], cpe_depthwise: bool,
               cpe_batchnorm: bool = False):
    """``count`` encodings in a ModuleList, or None without a kernel."""
    if cpe_kernel is None:
        return None
    return nn.ModuleList(ConvPositionEncoding(channels, cpe_kernel, cpe_depthwise, cpe_batchnorm)
                         for _ in range(count))
