"""Any2Point's 2D virtual projection against the released code's outputs (golden case ``any2point_dinov2_projection``).

The case holds points (2 scans x 1024, unit sphere), the DINOv2 position table the released code reads (random
stand-in, 1 + 37 x 37 rows of width 768) and the released code's projected pixels per cube view, virtual cell
ids of 26 px cells, and the interpolated position embeddings (per view and view-averaged, in the released code's
raw-reshape layout). pc3d reads the table through a DINOv2 model of the same geometry (518 px, patch 14), so the
whole path from the frozen model to the encoding is checked. The case is 5.5 MB and lives only under the golden
root (``PC3D_OFFICIAL_GOLDEN``, default ``../shared/golden/official_models``).
"""
import numpy as np
import pytest
import torch

from official_golden import assert_close, case_dirs, load_case, require_case

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install transformers)")

from pc3d.models.any2point import FrozenTransformer, VirtualProjection  # noqa: E402

PREFIX = "any2point_dinov2_projection"
CASES = [PREFIX]
PATCH = 14  # pixels per patch of the 518 px DINOv2 image
POSITION_TOL_PATCHES = 1e-4


def frozen_dinov2_with(pos_embed: torch.Tensor) -> FrozenTransformer:
    """A one-block random DINOv2 of the released geometry (518 px, patch 14, width 768) holding ``pos_embed``."""
    if pos_embed.shape != (1, 1 + 37 * 37, 768):
        raise ValueError(f"checkpoint pos_embed must be (1, 1370, 768), got {tuple(pos_embed.shape)}")
    frozen = FrozenTransformer(config=dict(model_type="dinov2", hidden_size=768, num_hidden_layers=1,
                                           num_attention_heads=12, image_size=518, patch_size=14))
    with torch.no_grad():
        frozen.embeddings.position_embeddings.copy_(pos_embed)
    return frozen


def circular_diff(ours: np.ndarray, official: np.ndarray, period: float) -> float:
    """Max distance on the circle of ``period`` pixels (positions wrap modulo the image size)."""
    d = np.abs(np.asarray(ours, np.float64) - np.asarray(official, np.float64)) % period
    return float(np.minimum(d, period - d).max())


@pytest.mark.parametrize("name", CASES)
def test_projection_equals_official(name, record_property):
    case = require_case(PREFIX, name)
    data = load_case(case)
    state = torch.load(data["checkpoint"], map_location="cpu", weights_only=True)
    frozen = frozen_dinov2_with(state["pos_embed"])
    resolution = frozen.image_size()
    assert resolution == 518
    points = torch.from_numpy(data["input"]["points"])
    official = data["output"]
    b, n, _ = points.shape

    per_token = VirtualProjection("2d")
    mean, per_view, cells, coords = per_token(points, frozen.position_table(), resolution)
    assert per_token.cells_per_axis(resolution) == int(official["grid_shape"]) == 20

    # Positions: pixels of the 518 image, compared in patches on the circle (they wrap modulo 518).
    diffs = {}
    pos_x = coords[..., 0].reshape(b * 6, n).numpy()  # rows b * 6 + view, as the released get_pos returns them
    pos_y = coords[..., 1].reshape(b * 6, n).numpy()
    for key, ours in (("pos_x", pos_x), ("pos_y", pos_y), ("x_y", coords.numpy())):
        diffs[key] = circular_diff(ours, official[key], resolution) / PATCH
        assert diffs[key] <= POSITION_TOL_PATCHES, f"{key}: {diffs[key]:.2e} patches"
        assert_close(ours, official[key], key)
    mismatched = int((cells.numpy() != official["grid_index"]).sum())
    assert mismatched == 0, f"grid_index: {mismatched} of {cells.numel()} virtual cells differ"

    # Interpolated embeddings in the released layout (raw reshape of the (B*V, C, N) tensor).
    _, raw, _, _ = VirtualProjection("2d", official_layout=True)(points, frozen.position_table(), resolution)
    diffs["raw_first16"] = assert_close(raw[:, :, :16].detach().numpy(), official["interpolated_pos_embed_raw_first16"],
                                        "interpolated_pos_embed_raw_first16")
    diffs["mean_first128"] = assert_close(raw.mean(1)[:, :128].detach().numpy(),
                                          official["interpolated_pos_embed_mean_first128"],
                                          "interpolated_pos_embed_mean_first128")
    # The per-token layout holds the same numbers, each token's own (this is what pc3d feeds the model).
    torch.testing.assert_close(raw, per_view.reshape(b * 6, n, -1).transpose(1, 2).reshape(b, 6, n, -1))
    torch.testing.assert_close(mean, per_view.mean(1))
    for key, d in diffs.items():
        record_property(key, d)
    print(f"{name}: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
          + " (positions in patches, embeddings absolute)")


def test_every_known_case_found_is_run():
    found = {c.name for c in case_dirs(PREFIX)}
    assert found <= set(CASES), f"cases no test runs: {sorted(found - set(CASES))}"

