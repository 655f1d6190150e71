"""Any2Point backbone: tokenizer -> virtual projection -> frozen blocks with guided adapters -> token features.

With ``frozen=None`` the backbone is just the tokenizer (the from-scratch baseline: same tokenizer, no
frozen transformer), so both arms of the comparison share every other line of code.
"""
import torch
from torch import nn

from pc3d.registry import MODELS

from .adapters import BottleneckAdapter, GuidedAdapter, voxel_cells
from .frozen import FrozenTransformer
from .projection import VirtualProjection
from .tokenizer import PointTokenizer


@MODELS.register_module()
class Any2PointBackbone(nn.Module):
    """Point cloud -> per-token features from a frozen 1D/2D transformer adapted to 3D.

    Args:
        frozen: kwargs of :class:`FrozenTransformer` (``pretrained``/``config``, ``num_layers``,
            ``train_norms``), or None for the tokenizer-only baseline.
        embed_dim: token width when ``frozen`` is None (otherwise the frozen model's width).
        num_tokens, group_size, tokenizer_hidden: see :class:`PointTokenizer`.
        num_views: virtual views of the projection (six in the paper).
        cells_per_axis: virtual 1D/2D cells per axis used by the guided adapter.
        voxel_cells_per_axis: 3D voxel grid of the adapter's 3D branch.
        adapter_hidden: bottleneck width of both adapters.
        aggregation: 'attention' or 'pool' inside a virtual cell.
    """

    def __init__(self, frozen: dict = None, embed_dim: int = 384, num_tokens: int = 64, group_size: int = 32,
                 tokenizer_hidden: int = 128, num_views: int = 6, cells_per_axis: int = 4,
                 voxel_cells_per_axis: int = 4, adapter_hidden: int = 64, aggregation: str = "attention"):
        super().__init__()
        self.frozen = FrozenTransformer(**frozen) if frozen is not None else None
        if self.frozen is not None:
            embed_dim = self.frozen.embed_dim
        self.embed_dim = embed_dim
        self.voxel_cells_per_axis = voxel_cells_per_axis
        self.tokenizer = PointTokenizer(embed_dim, num_tokens, group_size, tokenizer_hidden)
        if self.frozen is not None:
            self.projection = VirtualProjection(self.frozen.kind, num_views, cells_per_axis)
            n = len(self.frozen.blocks)
            self.guided = nn.ModuleList(GuidedAdapter(embed_dim, adapter_hidden, aggregation) for _ in range(n))
            self.bottleneck = nn.ModuleList(BottleneckAdapter(embed_dim, adapter_hidden) for _ in range(n))

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
        pos_embed, cells = self.projection(centres, self.frozen.position_table())
        voxels = voxel_cells(centres, self.voxel_cells_per_axis)
        x = self.frozen.embed(tokens, pos_embed)  # (B, 1 + M, C)
        for i in range(len(self.frozen.blocks)):
            x = self.frozen.attention_step(i, x)
            # The guided adapter works on point tokens only; CLS (index 0) passes unchanged.
            x = torch.cat([x[:, :1], x[:, 1:] + self.guided[i](x[:, 1:], cells, voxels)], dim=1)
            x = self.frozen.ffn_step(i, x)
            x = x + self.bottleneck[i](x)
        x = self.frozen.final_norm(x)
        return x[:, 1:], x[:, 0], centres
