"""The standalone backbone API runs as documented (docs/embedding.md's example is executed verbatim),
and init_model + inference_detector give boxes in pc3d's convention."""
import math
import re
from pathlib import Path

import torch

from pc3d.apis import build_backbone, inference_detector, init_model

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "embedding.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_backbone_example_runs(monkeypatch):
    snippet = python_blocks(DOC.read_text())[0]
    assert len(snippet.strip().splitlines()) <= 10, "the README example should stay a 10-line snippet"
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)
    out = namespace["out"]
    assert out.voxels.feats.shape[0] == out.voxels.coords.shape[0] > 0
    # Both clouds produced voxels and BEV cells, and sample 1 (1000 points) is much sparser.
    counts = torch.bincount(out.voxels.coords[:, 0].long(), minlength=2)
    assert counts[0] > counts[1] > 0
    assert (out.bev[1].abs().sum(0) > 0).sum() == counts[1]


def test_backbone_accepts_encoded_voxels():
    backbone = build_backbone(str(ROOT / "configs" / "dsvt" / "dsvt_pillar_synthetic.py")).eval()
    scan = torch.rand(5000, 5) * torch.tensor([60.0, 60.0, 4.0, 1.0, 1.0]) - torch.tensor([30.0, 30.0, 2.0, 0, 0])
    with torch.no_grad():
        from_points = backbone(scan)
        encoded = backbone.voxel_encoder(backbone.voxelizer(torch.cat([torch.zeros(5000, 1), scan], 1), 1))
        from_voxels = backbone(voxels=encoded)
    torch.testing.assert_close(from_points.bev, from_voxels.bev)


def test_init_model_and_inference_detector(tmp_path, real_scans):
    config = str(ROOT / "configs" / "flatformer" / "flatformer_synthetic.py")
    torch.manual_seed(0)
    reference = init_model(config)
    # An mmengine Runner checkpoint carries, besides the weights, a MessageHub of HistoryBuffers and the
    # parameter schedulers' state (which pickles their annealing function): init_model must load it
    # with torch's safe loader.
    from mmengine.logging import HistoryBuffer
    from mmengine.optim.scheduler import OneCycleLR

    history = HistoryBuffer()
    history.update(1.5)
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3)
    scheduler = OneCycleLR(optimizer, eta_max=3e-3, total_steps=10)
    ckpt = tmp_path / "epoch_1.pth"
    torch.save(dict(state_dict=reference.state_dict(), meta=dict(epoch=1),
                    message_hub=dict(log_scalars={"train/loss": history}),
                    param_schedulers=[scheduler.state_dict()]), ckpt)
    torch.manual_seed(1)
    model = init_model(config, str(ckpt))
    assert not model.training
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    scan = next(iter(real_scans.values()))
    points = torch.cat([scan[:, :4], torch.zeros(scan.shape[0], 1)], dim=1)  # x, y, z, intensity, elongation 0
    result = inference_detector(model, points)
    assert set(result) == {"boxes", "scores", "labels"}
    k = result["boxes"].shape[0]
    assert result["boxes"].shape == (k, 7) and result["scores"].shape == (k,) and result["labels"].shape == (k,)
    assert result["boxes"].dtype == torch.float32 and result["labels"].dtype == torch.int64
    if k:
        heading = result["boxes"][:, 6]
        assert bool(((heading >= -math.pi) & (heading < math.pi)).all())
        assert bool((result["boxes"][:, 3:6] > 0).all())
        assert bool(((result["scores"] >= 0) & (result["scores"] <= 1)).all())
        assert set(result["labels"].tolist()) <= {0, 1, 2}
    batch = inference_detector(model, [points, points[:2000]])
    assert isinstance(batch, list) and len(batch) == 2
    torch.testing.assert_close(batch[0]["boxes"], result["boxes"])
