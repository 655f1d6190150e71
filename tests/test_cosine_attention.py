"""Scaled cosine attention (Swin V2) in the sparse transformers' GroupAttention: equal to a plain-PyTorch
reference, blind to the q/k weights' scale (bounded logits) where dot-product attention is not, temperature
capped at 100, and finite for all-zero queries/keys."""
import math

import pytest
import torch

from pc3d.models.backbones3d.attention import COSINE_MAX_SCALE, GroupAttention

C, H = 16, 4


def reference(attn: GroupAttention, x, qk, padding_mask):
    """Loop-per-group, per-head softmax(tau cos(q, k)) v, then the output projection."""
    tau = attn.logit_scale.detach().clamp(max=math.log(COSINE_MAX_SCALE)).exp().flatten()
    d = C // H
    out = torch.zeros_like(x)
    for gi in range(x.shape[0]):
        q, k = attn.qk(qk[gi]).split(C, dim=1)
        v = attn.v(x[gi])
        keep = ~padding_mask[gi]
        heads = []
        for h in range(H):
            qh, kh, vh = (t[:, h * d:(h + 1) * d] for t in (q, k, v))
            cos = (qh / qh.norm(dim=1, keepdim=True).clamp_min(1e-12)) @ \
                  (kh / kh.norm(dim=1, keepdim=True).clamp_min(1e-12)).T
            logits = (tau[h] * cos).masked_fill(~keep[None, :], float("-inf"))
            heads.append(logits.softmax(dim=1) @ vh)
        out[gi] = attn.proj(torch.cat(heads, dim=1))
    return out


def inputs(seed=0, ng=5, g=9):
    gen = torch.Generator().manual_seed(seed)
    x, qk = torch.randn(ng, g, C, generator=gen), torch.randn(ng, g, C, generator=gen)
    mask = torch.rand(ng, g, generator=gen) < 0.4
    mask[:, 0] = False  # every group keeps one real slot
    return x, qk, mask


@pytest.mark.parametrize("seed", [0, 1])
def test_cosine_attention_matches_reference(seed):
    torch.manual_seed(seed)
    attn = GroupAttention(C, H, cosine=True)
    with torch.no_grad():  # distinct temperatures per head, one of them above the cap
        attn.logit_scale.copy_(torch.tensor([0.0, 1.5, 3.0, 6.0]).view(H, 1, 1))
    x, qk, mask = inputs(seed)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, qk, mask), reference(attn, x, qk, mask), atol=1e-5, rtol=1e-5)


def test_cosine_logits_do_not_grow_with_the_qk_weights():
    x, qk, mask = inputs(3)
    outs = {}
    for cosine in (False, True):
        torch.manual_seed(0)
        attn = GroupAttention(C, H, cosine=cosine)
        with torch.no_grad():
            before = attn(x, qk, mask)
            attn.qk.weight.mul_(30.0)
            attn.qk.bias.mul_(30.0)
            outs[cosine] = (before, attn(x, qk, mask))
    torch.testing.assert_close(*outs[True], atol=1e-5, rtol=1e-5)
    assert (outs[False][0] - outs[False][1]).abs().max() > 0.1  # dot-product logits scale 900x


def test_temperature_starts_at_10_and_is_capped_at_100():
    torch.manual_seed(0)
    attn = GroupAttention(C, H, cosine=True)
    torch.testing.assert_close(attn.logit_scale.exp().flatten(), torch.full((H,), 10.0))
    x, qk, mask = inputs(4)
    with torch.no_grad():
        attn.logit_scale.fill_(math.log(100.0))
        at_cap = attn(x, qk, mask)
        attn.logit_scale.fill_(math.log(1000.0))
        above = attn(x, qk, mask)
    torch.testing.assert_close(at_cap, above)
    above_grad = torch.autograd.grad(attn(x, qk, mask).square().sum(), attn.logit_scale)[0]
    assert not above_grad.any()  # clamped: no gradient pushes tau further up
    with torch.no_grad():
        attn.logit_scale.fill_(math.log(5.0))
    assert torch.autograd.grad(attn(x, qk, mask).square().sum(), attn.logit_scale)[0].abs().sum() > 0


def test_zero_queries_and_keys_stay_finite():
    torch.manual_seed(0)
    attn = GroupAttention(C, H, cosine=True)
    with torch.no_grad():
        attn.qk.bias.zero_()
    x, _, mask = inputs(5)
    out = attn(x, torch.zeros_like(x), mask)
    assert torch.isfinite(out).all()
    # cos = 0 everywhere: each query averages the real values of its group.
    with torch.no_grad():
        v = attn.v(x)
        mean = torch.stack([v[i][~mask[i]].mean(0) for i in range(x.shape[0])])
        torch.testing.assert_close(out, attn.proj(mean)[:, None, :].expand_as(out), atol=1e-5, rtol=1e-5)
