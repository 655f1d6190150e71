"""Whole-detector export (points -> boxes) of the FlatFormer and DSVT-P detectors: torch.export against eager on
the real scans, the AOTInductor package run without pc3d's Python code, tools/export.py and the refusals.

The detectors are narrow variants of the paper configs (every width 8-16, the voxel grid, partitions, windows,
group/set sizes, 2D strides and head post-processing unchanged) so that the tests take seconds on CPU.
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pc3d.apis import init_model
from pc3d.apis.export import DetectorProgram, compile_aoti, export_detector, load_aoti, op_library_path, program_ops

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"flatformer": ROOT / "configs" / "flatformer" / "flatformer_waymo.py",
           "dsvt_pillar": ROOT / "configs" / "dsvt" / "dsvt_pillar_waymo.py"}
PARTITION_OP = {"flatformer": "pc3d.flat_window_partition.default",
                "dsvt_pillar": "pc3d.rotated_set_partition.default"}
# The untrained heatmap scores all lie within 0.01 of sigmoid(-2.19) = 0.1 (its input is tiny); its last conv gets
# much larger random weights and the threshold is raised, so the scores spread over (0, 1) and the number of boxes
# differs from scan to scan instead of filling the per-sample cap.
HEATMAP_WEIGHT_STD = {"flatformer": 40.0, "dsvt_pillar": 20.0}
SCORE_THRESHOLD = 0.65


def small_model_cfg(name: str, width: int = 8) -> dict:
    """The paper config's model with every width derived from ``width`` (structure unchanged)."""
    from mmengine.config import Config

    m = copy.deepcopy(Config.fromfile(str(CONFIGS[name])).model.to_dict())
    c, feat = width, 2 * width
    if name == "flatformer":
        m["voxel_encoder"]["feat_channels"] = (c, feat)
        m["backbone3d"].update(in_channels=feat, channels=feat, num_heads=2, num_blocks=1, ffn_channels=2 * feat)
        m["bev"]["in_channels"] = feat
        stages = len(m["backbone2d"]["out_channels"])
        m["backbone2d"].update(in_channels=feat, out_channels=(c,) * stages)
        m["neck"].update(in_channels=(c,) * stages, out_channels=(c,) * stages)
        m["head"].update(in_channels=c * stages, shared_channels=c, head_channels=c)
    else:
        m["voxel_encoder"]["num_filters"] = (feat, feat)
        m["backbone3d"].update(in_channels=feat, channels=feat, num_heads=2, ffn_channels=2 * feat)
        m["bev"]["num_bev_features"] = feat
        stages = len(m["backbone2d"]["num_filters"])
        m["backbone2d"].update(in_channels=feat, num_filters=(c,) * stages, upsample_channels=(c,) * stages)
        m["head"].update(in_channels=c * stages, shared_channels=c)
    m["head"]["test_cfg"]["score_threshold"] = SCORE_THRESHOLD
    return m


def small_model(name: str):
    torch.manual_seed(0)
    model = init_model(dict(model=small_model_cfg(name)))
    head = model.head
    last = head.heatmap[-1] if name == "flatformer" else head.branches["heatmap"][-1]
    torch.nn.init.normal_(last.weight, std=HEATMAP_WEIGHT_STD[name])
    return model


def eager_boxes(model, points):
    """The eager detector on one scan (N, C) -> (boxes, scores, labels)."""
    batched = torch.cat([points.new_zeros(points.shape[0], 1), points], dim=1)
    with torch.no_grad():
        r = model(dict(points=batched, batch_size=1), [{}], mode="predict")[0]
    return r["pred_boxes"], r["pred_scores"], r["pred_labels"]


def assert_same_detections(got, expected, atol=1e-5):
    boxes, scores, labels = got
    e_boxes, e_scores, e_labels = expected
    assert boxes.shape == e_boxes.shape and scores.shape == e_scores.shape and labels.shape == e_labels.shape, \
        (boxes.shape, e_boxes.shape)
    assert labels.dtype == torch.int64 and boxes.dtype == scores.dtype == torch.float32
    torch.testing.assert_close(boxes, e_boxes, atol=atol, rtol=0)
    torch.testing.assert_close(scores, e_scores, atol=atol, rtol=0)
    assert torch.equal(labels, e_labels)


def scan_inputs(real_scans):
    """The real scans plus a 5 m crop of the first (other point count, fewer voxels and boxes)."""
    scans = list(real_scans.values())
    crop = scans[0][scans[0][:, :2].norm(dim=1) < 5.0]
    return scans + [crop.contiguous()]


@pytest.fixture(scope="module")
def exported():
    """Per detector name, (eager model, exported program), exported on the first real scan when it is used."""
    return {}


def get_exported(exported, name, example):
    if name not in exported:
        model = small_model(name)
        exported[name] = (model, export_detector(model, example))
    return exported[name]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_exported_detector_matches_eager_on_real_scans(real_scans, exported, name):
    scans = scan_inputs(real_scans)
    model, program = get_exported(exported, name, scans[0])
    # Voxelization, the partition and NMS stay one op call each (not traced into the example's data).
    ops = program_ops(program)
    for op in ("pc3d.voxelize_dynamic.default", PARTITION_OP[name], "pc3d.nms_bev_rotated.default"):
        assert op in ops, ops
    module = program.module()
    counts = set()
    for points in scans:
        expected = eager_boxes(model, points)
        with torch.no_grad():
            got = module(points)
        assert_same_detections(got, expected)
        counts.add((points.shape[0], expected[0].shape[0]))
    # One program served every point count and every number of boxes.
    assert len({n for n, _ in counts}) == len(scans) and len({k for _, k in counts}) > 1, counts


def test_exported_program_saves_and_loads(real_scans, exported, tmp_path):
    scans = scan_inputs(real_scans)
    model, program = get_exported(exported, "flatformer", scans[0])
    torch.export.save(program, str(tmp_path / "program.pt2"))
    loaded = torch.export.load(str(tmp_path / "program.pt2")).module()
    with torch.no_grad():
        assert_same_detections(loaded(scans[-1]), eager_boxes(model, scans[-1]))


def test_scan_without_points_in_range_is_refused(real_scans, exported):
    scans = scan_inputs(real_scans)
    _, program = get_exported(exported, "flatformer", scans[0])
    far = scans[-1][:100].clone()
    far[:, 0] += 500.0  # every point outside pc_range
    with pytest.raises(RuntimeError):
        program.module()(far)


def test_program_refuses_unsupported_models_and_examples():
    m = small_model_cfg("flatformer")
    m["voxelizer"] = dict(type="HardVoxelizer", voxel_size=m["voxelizer"]["voxel_size"],
                          pc_range=m["voxelizer"]["pc_range"])
    with pytest.raises(ValueError, match="DynamicVoxelizer"):
        DetectorProgram(init_model(dict(model=m)))
    model = small_model("flatformer")
    with pytest.raises(ValueError, match="eval mode"):
        DetectorProgram(model.train())
    model.eval()
    with pytest.raises(ValueError, match="float32"):
        export_detector(model, torch.zeros(10, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 2 points"):
        export_detector(model, torch.zeros(1, 5))


# Runs the AOTInductor package in a fresh interpreter that loads torch and pc3d's op library only.
RUN_PACKAGE = """
import sys, torch
torch.ops.load_library(sys.argv[1])
runner = torch._inductor.aoti_load_package(sys.argv[2])
points = torch.load(sys.argv[3])
outs = [runner(p) for p in points]
assert not any(m == "pc3d" or m.startswith("pc3d.") for m in sys.modules), "pc3d's Python code was imported"
torch.save(outs, sys.argv[4])
"""


@pytest.mark.slow
def test_aoti_package_runs_without_pc3d_python(real_scans, exported, tmp_path):
    scans = scan_inputs(real_scans)
    model, program = get_exported(exported, "flatformer", scans[0])
    package = compile_aoti(program, str(tmp_path / "detector_aoti.pt2"))
    inputs = [scans[0], scans[-1]]
    torch.save(inputs, tmp_path / "points.pt")
    subprocess.run([sys.executable, "-c", RUN_PACKAGE, op_library_path(), package, str(tmp_path / "points.pt"),
                    str(tmp_path / "out.pt")], check=True, cwd=tmp_path)
    outs = torch.load(tmp_path / "out.pt")
    for points, got in zip(inputs, outs):
        assert_same_detections(tuple(got), eager_boxes(model, points), atol=1e-4)
    # The in-process loader gives the same.
    runner = load_aoti(package)
    assert_same_detections(tuple(runner(inputs[1])), eager_boxes(model, inputs[1]), atol=1e-4)


def test_export_tool_writes_a_runnable_program(real_scans, tmp_path):
    from mmengine.config import Config

    sys.path.insert(0, str(ROOT / "tools"))
    import export as export_tool

    model = small_model("flatformer")
    config = tmp_path / "small_flatformer.py"
    Config(dict(model=small_model_cfg("flatformer"))).dump(str(config))
    torch.save(model.state_dict(), tmp_path / "weights.pth")
    scan = scan_inputs(real_scans)[-1]
    scan.numpy().tofile(tmp_path / "scan.bin")
    report = export_tool.main([str(config), str(tmp_path / "weights.pth"), str(tmp_path / "out"),
                               "--example", str(tmp_path / "scan.bin"), "--repeats", "0"])
    assert report["max_abs_diff_exported"] == 0.0 and report["matched_exported"] == 1.0 and report["num_boxes"] > 0
    assert PARTITION_OP["flatformer"] in report["ops"]
    assert json.loads((tmp_path / "out" / "export.json").read_text())["example_points"] == scan.shape[0]
    loaded = torch.export.load(str(tmp_path / "out" / "program.pt2")).module()
    other = scan_inputs(real_scans)[1]
    with torch.no_grad():
        assert_same_detections(loaded(other), eager_boxes(model, other))


def test_models_suite_staged_detector_equals_the_detector(real_scans):
    """tools/benchmark.py --suite models: the per-stage detector call computes the detector's boxes."""
    from pc3d.benchmark.suite_models import STAGES, staged_detector_call

    model = small_model("flatformer")
    points = scan_inputs(real_scans)[-1]
    extra = {}
    run = staged_detector_call(model, torch.cat([points.new_zeros(points.shape[0], 1), points], dim=1), extra)
    for _ in range(2):
        result = run()[0]
    assert_same_detections((result["pred_boxes"], result["pred_scores"], result["pred_labels"]),
                           eager_boxes(model, points))
    assert set(extra["stage_ms"]) == set(extra["stage_share"]) == set(STAGES)
    assert abs(sum(extra["stage_share"].values()) - 1.0) < 0.01
