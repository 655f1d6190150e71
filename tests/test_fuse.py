"""Folding eval-mode BatchNorm into convolutions: same detector outputs, fewer modules doing work."""
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_detector import tiny_model_cfg  # noqa: E402


def _randomise_bn(model, gen):
    """Non-trivial running statistics and affine parameters (fresh BNs are identities)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))


def test_fused_detector_equals_unfused():
    from pc3d.models.fuse import fuse_conv_bn
    from pc3d.registry import MODELS

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    cfg = tiny_model_cfg()
    cfg["head"].update(reg_radius=1, double_angle=True)
    model = MODELS.build(cfg).eval()
    with torch.no_grad():
        _randomise_bn(model, gen)
    pts = torch.cat([torch.zeros(3000, 1), torch.rand(3000, 3, generator=gen) * 30 - 15, torch.rand(3000, 2, generator=gen)], 1)
    pts[:, 3] = pts[:, 3] * 0.2 - 1.0  # z within the tiny range
    with torch.no_grad():
        def maps(m):
            x = m.bev(m.voxel_encoder(m.voxelizer(pts, 1)))
            return m.head(m.neck(m.backbone2d(x)))

        before = maps(model)
        bns = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        n = fuse_conv_bn(model)
        after = maps(model)
    # Every BN2d of the 2D backbone, neck and head follows a conv in a Sequential.
    assert n == bns > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for k in before:
        torch.testing.assert_close(after[k], before[k], atol=1e-4, rtol=1e-4)


def test_training_mode_bn_is_left_alone_and_linear_bn_folds():
    from pc3d.models.fuse import fuse_conv_bn

    gen = torch.Generator().manual_seed(1)
    seq = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 4), nn.BatchNorm1d(4))
    with torch.no_grad():
        _randomise_bn(seq, gen)
    assert fuse_conv_bn(seq.train()) == 0  # batch statistics cannot be folded into weights
    x = torch.randn(7, 5, generator=gen)
    with torch.no_grad():
        want = seq.eval()(x)
        assert fuse_conv_bn(seq) == 2
        torch.testing.assert_close(seq(x), want, atol=1e-5, rtol=1e-5)
    assert [type(m).__name__ for m in seq] == ["Linear", "Identity", "ReLU", "Linear", "Identity"]


def test_init_model_folds_batchnorm_on_request(tmp_path):
    from pc3d.apis import init_model

    cfg = dict(model=tiny_model_cfg())
    plain = init_model(cfg)
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())  # the default keeps the BNs
    fused = init_model(cfg, fuse_conv_bn=True)
    assert not fused.training and not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
