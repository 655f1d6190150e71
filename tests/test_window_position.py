"""DSVT's learned in-window position encoding (``window_position``) and FlatFormer's ``position_encoding='mlp'``:
hand-computed offsets for unshifted and shifted windows, translation by whole windows changes nothing (the
sinusoidal encoding of absolute position does change), and bad options are refused."""
import pytest
import torch

from pc3d.models.backbones3d import FlatFormer
from pc3d.models.backbones3d.window_position import window_relative_position
from pc3d.models.structures import SparseVoxels

C_IN = 8


def test_relative_position_by_hand():
    # Windows (Wz, Wy, Wx) = (4, 5, 5); voxel (z, y, x) = (3, 7, 3).
    coords = torch.tensor([[0, 3, 7, 3]], dtype=torch.int32)
    rel = window_relative_position(coords, (4, 5, 5), (0, 0, 0), 3)
    # x: 3 % 5 = 3 -> (3 - 2) / 5; y: 7 % 5 = 2 -> 0; z: 3 % 4 = 3 -> (3 - 1.5) / 4.
    torch.testing.assert_close(rel, torch.tensor([[0.2, 0.0, 0.375]]))
    # Shifted by (0, 2, 2): x 5 % 5 = 0 -> -0.4, y 9 % 5 = 4 -> 0.4; only x, y asked for.
    rel = window_relative_position(coords, (4, 5, 5), (0, 2, 2), 2)
    torch.testing.assert_close(rel, torch.tensor([[-0.4, 0.4]]))


def test_relative_position_stays_inside_the_window():
    g = torch.Generator().manual_seed(0)
    coords = torch.cat([torch.zeros(500, 1, dtype=torch.int64), torch.randint(0, 40, (500, 3), generator=g)], 1)
    for shift in ((0, 0, 0), (0, 6, 6)):
        rel = window_relative_position(coords.int(), (8, 13, 13), shift, 3)
        assert rel.shape == (500, 3)
        assert rel.abs().max() < 0.5
        # Back to the integer offset: (rel * w + (w - 1) / 2) is (c + shift) % w.
        w = torch.tensor([13.0, 13.0, 8.0])
        offset = coords[:, [3, 2, 1]] + torch.tensor(shift[::-1])
        torch.testing.assert_close(rel * w + (w - 1) / 2, (offset % w.long()).float())


def _voxels(dx, dy):
    """30 voxels in a 20 x 20 x 4 corner of a 4 x 60 x 60 grid, moved by (dx, dy) cells."""
    g = torch.Generator().manual_seed(5)
    cells = torch.randperm(4 * 20 * 20, generator=g)[:30]
    z, y, x = cells // 400, (cells // 20) % 20, cells % 20
    coords = torch.stack([torch.zeros_like(z), z, y + dy, x + dx], 1).int()
    feats = torch.randn(30, C_IN, generator=g)
    return SparseVoxels(feats, coords, (4, 60, 60), 1)


@pytest.mark.parametrize("encoding", ["sine", "mlp"])
def test_translation_by_whole_windows(encoding):
    # Moving the scene by two windows in x and y keeps every voxel's place in its window (shifted or not),
    # the snake order and so the groups: only an encoding of absolute position can tell the two apart.
    torch.manual_seed(0)
    model = FlatFormer(C_IN, channels=16, num_heads=2, num_blocks=1, window_shape=(5, 5), group_size=8,
                       ffn_channels=32, position_axes=("x", "y", "z"), position_encoding=encoding).eval()
    with torch.no_grad():
        a = model(_voxels(0, 0)).feats
        b = model(_voxels(10, 20)).feats
    same = torch.allclose(a, b, atol=1e-5)
    assert same == (encoding == "mlp")


def test_mlp_encoding_uses_the_partitions_shift():
    # The shifted layers get the shifted MLP of the shifted offsets: positions() by hand.
    torch.manual_seed(0)
    model = FlatFormer(C_IN, channels=16, num_heads=2, num_blocks=1, window_shape=(5, 5), group_size=8,
                       ffn_channels=32, position_encoding="mlp").eval()
    v = _voxels(3, 1)
    with torch.no_grad():
        plain, shifted = model.positions(v.coords, v.spatial_shape)
        c = v.coords.long()
        rel0 = torch.stack([(c[:, 3] % 5 - 2) / 5, (c[:, 2] % 5 - 2) / 5], 1).float()
        rel1 = torch.stack([((c[:, 3] + 2) % 5 - 2) / 5, ((c[:, 2] + 2) % 5 - 2) / 5], 1).float()
        torch.testing.assert_close(plain, model.pos_mlps[0](rel0))
        torch.testing.assert_close(shifted, model.pos_mlps[1](rel1))


def test_bad_position_options_are_refused():
    with pytest.raises(ValueError, match="position_encoding"):
        FlatFormer(C_IN, channels=16, num_heads=2, position_encoding="rope")
    with pytest.raises(ValueError, match="position_axes"):
        FlatFormer(C_IN, channels=16, num_heads=2, position_encoding="mlp", position_axes=("x", "z"))
