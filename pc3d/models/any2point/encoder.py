"""Any2Point backbone: tokenizer -> virtual projection -> frozen blocks with the published adapters -> token features.

With ``frozen=None`` the backbone is just the tokenizer (the from-scratch baseline: same tokenizer, no
frozen transformer), so both arms of the comparison share every other line of code.
"""
from typing import Optional

import torch
from torch import nn

from pc3d.registry import MODELS

from .adapters import BottleneckAdapter, CellAttention, GuidedAdapter, voxel_clusters
from .frozen import FrozenTransformer
from .projection import VirtualProjection
from .tokenizer import PointTokenizer

# Published settings that differ between the 2D (DINOv2 fine-tune script) and 1D (CLIP text) models.
_MODE_DEFAULTS = {"2d": dict(voxel_size=0.16, guided_scale=0.7, adapter_hidden=8),
                  "1d": dict(voxel_size=0.08, guided_scale=0.3, adapter_hidden=16)}


@MODELS.register_module()
class Any2PointBackbone(nn.Module):
    """Point cloud -> per-token features from a frozen 1D/2D transformer adapted to 3D.

    Per frozen block i (published order): ``x <- x + pos`` (the virtual position encoding is added again
    before every block, CLS with its own learned ``cls_pos``), attention, FFN with the bottleneck adapter
    (``f + adapter_scale * adapter(f)``), then the guided adapter updates the point tokens.

    Args:
        frozen: kwargs of :class:`FrozenTransformer` (``pretrained``/``config``, ``num_layers``,
            ``train_norms``), or None for the tokenizer-only baseline.
        embed_dim: token width when ``frozen`` is None (otherwise the frozen model's width).
        num_tokens, group_size, tokenizer_hidden: see :class:`PointTokenizer`.
        projection: extra kwargs of :class:`VirtualProjection` (``camera_distance``, ``cell_size``, ``length``,
            ``official_layout``, ...); the defaults are the published ones.
        voxel_size: side of the guided adapter's 3D voxels (published 0.16 for 2D, 0.08 for 1D; None: by mode).
        guided_scale: multiplier of the guided adapter's update (published 0.7 / 0.3; None: by mode).
        adapter_hidden: bottleneck adapter width (published 8 / 16; None: by mode).
        adapter_scale: multiplier of the bottleneck adapter (published 0.3).
        adapter_dropout: dropout inside the bottleneck adapter (published 0.1).
        cell_attention_dim, cell_attention_heads: the per-view cell attention (published 12, 6).
        view_pool: 'mean' (published) or 'maxmean' inside a virtual cell.
        pos_every_block: add the position encoding before every block (published) instead of only the first.
    """

    def __init__(self, frozen: Optional[dict] = None, embed_dim: int = 384, num_tokens: int = 64,
                 group_size: int = 32, tokenizer_hidden: int = 128, projection: Optional[dict] = None,
                 voxel_size: Optional[float] = None, guided_scale: Optional[float] = None,
                 adapter_hidden: Optional[int] = None, adapter_scale: float = 0.3, adapter_dropout: float = 0.1,
                 cell_attention_dim: int = 12, cell_attention_heads: int = 6, view_pool: str = "mean",
                 pos_every_block: bool = True):
        super().__init__()
        self.frozen = FrozenTransformer(**frozen) if frozen is not None else None
        if self.frozen is not None:
            embed_dim = self.frozen.embed_dim
        self.embed_dim = embed_dim
        self.tokenizer = PointTokenizer(embed_dim, num_tokens, group_size, tokenizer_hidden)
        if self.frozen is None:
            return
        mode = self.frozen.kind
        defaults = _MODE_DEFAULTS[mode]
        self.voxel_size = defaults["voxel_size"] if voxel_size is None else voxel_size
        guided_scale = defaults["guided_scale"] if guided_scale is None else guided_scale
        adapter_hidden = defaults["adapter_hidden"] if adapter_hidden is None else adapter_hidden
        self.adapter_scale = adapter_scale
        self.pos_every_block = pos_every_block
        self.projection = VirtualProjection(mode, **(projection or {}))
        v, n = self.projection.num_views, len(self.frozen.blocks)
        # One cell attention and LayerNorm per view, shared by all blocks (as published).
        self.cell_attention = nn.ModuleList(
            CellAttention(embed_dim, cell_attention_dim, cell_attention_heads) for _ in range(v))
        self.cell_norm = nn.ModuleList(nn.LayerNorm(embed_dim) for _ in range(v))
        self.guided = nn.ModuleList(GuidedAdapter(embed_dim, v, guided_scale, view_pool) for _ in range(n))
        self.bottleneck = nn.ModuleList(BottleneckAdapter(embed_dim, adapter_hidden, adapter_dropout)
                                        for _ in range(n))
        self.cls_pos = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)

    def virtual_positions(self, centres: torch.Tensor):
        """Projection of the token centres on the frozen model's grid.

        Args:
            centres: (B, M, 3) float xyz.

        Returns:
            pos_embed: (B, M, C) view-averaged position encoding.
            cells: (B, V, M) int64 virtual cell per view.
            num_cells: cells per sample and view.
        """
        table = self.frozen.position_table()
        if self.projection.mode == "2d":
            extent = self.frozen.image_size()
            pos_embed, _, cells, _ = self.projection(centres, table, extent)
            num_cells = self.projection.cells_per_axis(extent) ** 2
        else:
            pos_embed, _, cells, _ = self.projection(centres, table)
            num_cells = self.projection.cells_per_axis(self.projection.line_length(table))
        return pos_embed, cells, num_cells

    def forward(self, points: torch.Tensor):
        """Encode a batch of object point clouds.

        Args:
            points: (B, N, 3+) float, xyz first, normalised to the unit sphere.

        Returns:
            tokens: (B, M, C) float point-token features.
            cls: (B, C) float CLS feature (the token mean when there is no frozen model).
            centres: (B, M, 3) float xyz of the tokens.
        """
        tokens, centres = self.tokenizer(points)
        if self.frozen is None:
            return tokens, tokens.mean(dim=1), centres
        pos_embed, cells, num_cells = self.virtual_positions(centres)
        voxels, num_voxels = voxel_clusters(centres, self.voxel_size)
        x = self.frozen.embed(tokens, pos_embed)  # (B, 1 + M, C)
        cls_pos = self.cls_pos.expand(x.shape[0], 1, -1)
        pos = torch.cat([cls_pos, pos_embed], dim=1)
        first = torch.cat([cls_pos, torch.zeros_like(pos_embed)], dim=1)  # embed() already added pos_embed
        for i in range(len(self.frozen.blocks)):
            if self.pos_every_block:
                x = x + (first if i == 0 else pos)
            x = self.frozen.attention_step(i, x)
            x = self.frozen.ffn_step(i, x, self.bottleneck[i], self.adapter_scale)
            # The guided adapter updates the point tokens only; CLS (index 0) passes unchanged.
            upd = self.guided[i](x[:, 1:], cells, num_cells, voxels, num_voxels, self.cell_attention, self.cell_norm)
            x = torch.cat([x[:, :1], x[:, 1:] + upd], dim=1)
        x = self.frozen.final_norm(x)
        return x[:, 1:], x[:, 0], centres
