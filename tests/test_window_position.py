"""DSVT's learned in-window position encoding (``window_position``): hand-computed offsets for unshifted and
shifted windows, and every offset inside its window."""
import torch

from pc3d.models.backbones3d.window_position import window_relative_position


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
