"""box_errors: each ground truth against its nearest prediction, checked on hand-computed cases."""
import math

import numpy as np
import pytest
import torch

from pc3d.evaluation.box_errors import FIELDS, box_errors, format_box_errors
from test_waymo_metric import CYC, PED, VEH, box, gt_dict, pred_dict


def test_hand_computed_errors():
    gt = gt_dict([
        (0, VEH, box(VEH, 0.0), 50),
        (0, VEH, box(VEH, 30.0), 50),              # nothing of its class within 2 m: not found
        (1, VEH, box(VEH, 0.0, heading=0.2), 50),  # frame 1: matched to frame 1's prediction only
        (0, VEH, box(VEH, 60.0), 0),               # no LiDAR point: not evaluated
        (0, PED, box(PED, 10.0), 50),
    ])
    shifted = box(VEH, 0.3, 0.4, heading=math.pi + 0.1)  # centre 0.5 m off, pointing backwards
    shifted[3] += 0.2  # 20 cm too long
    pred = pred_dict([
        (0, VEH, shifted, 0.9),
        (0, VEH, box(VEH, 0.05), 0.1),             # nearer but below the score threshold
        (0, PED, box(PED, 30.0), 0.9),             # another class next to the missed vehicle
        (1, VEH, box(VEH, 0.3, heading=0.3), 0.8),  # 0.3 m off, heading 0.1 rad off
        (0, VEH, box(VEH, 60.0), 0.9),             # on the pointless ground truth: ignored with it
        (0, PED, box(PED, 10.0), 0.5),             # exact
    ])
    errors = box_errors(gt, pred, score_thr=0.3)
    veh, ped, cyc = errors["Vehicle"], errors["Pedestrian"], errors["Cyclist"]
    assert veh["num_gt"] == 3 and veh["found"] == pytest.approx(2 / 3)
    assert veh["centre_m"] == pytest.approx((0.5 + 0.3) / 2, abs=1e-5)
    # Heading errors: pi - 0.1 (reversed) and 0.1 rad.
    assert veh["heading_deg"] == pytest.approx(90.0, abs=1e-3)
    assert veh["reversed"] == pytest.approx(0.5)
    assert veh["length_m"] == pytest.approx(0.1, abs=1e-5) and veh["width_m"] == pytest.approx(0.0, abs=1e-6)
    # The IoU share counts the ground truths whose best 3D IoU (the compiled op's, which ignores direction)
    # reaches 0.7; the missed vehicle has none.
    from pc3d.ops import iou_3d_rotated

    first = iou_3d_rotated(torch.tensor([box(VEH, 0.0)], dtype=torch.float64),
                           torch.tensor([shifted], dtype=torch.float64)).item()
    second = iou_3d_rotated(torch.tensor([box(VEH, 0.0, heading=0.2)], dtype=torch.float64),
                            torch.tensor([box(VEH, 0.3, heading=0.3)], dtype=torch.float64)).item()
    assert first < 0.7 <= second and veh["iou_hit"] == pytest.approx(1 / 3)
    assert ped["num_gt"] == 1 and ped["found"] == 1.0 and ped["centre_m"] == pytest.approx(0.0, abs=1e-6)
    assert ped["iou_hit"] == 1.0 and ped["reversed"] == 0.0
    assert cyc["num_gt"] == 0 and all(math.isnan(cyc[f]) for f in FIELDS if f != "num_gt")
    # Lowering the score threshold lets the nearer low-score box be frame 0's match: centre 0.05 m off.
    low = box_errors(gt, pred, score_thr=0.05)["Vehicle"]
    assert low["centre_m"] == pytest.approx((0.05 + 0.3) / 2, abs=1e-5) and low["reversed"] == 0.0
    table = format_box_errors(errors)
    assert "Vehicle" in table and "heading_deg" in table and "nan" in table


def test_max_distance_and_bad_inputs():
    gt = gt_dict([(0, VEH, box(VEH, 0.0), 50)])
    pred = pred_dict([(0, VEH, box(VEH, 1.5), 0.9)])
    assert box_errors(gt, pred)["Vehicle"]["found"] == 1.0
    assert box_errors(gt, pred, max_distance=1.0)["Vehicle"]["found"] == 0.0
    assert math.isnan(box_errors(gt, pred, max_distance=1.0)["Vehicle"]["centre_m"])
    with pytest.raises(ValueError, match="max_distance must be > 0"):
        box_errors(gt, pred, max_distance=0.0)
    bad = dict(pred, bbox=np.zeros((1, 6), np.float32))
    with pytest.raises(ValueError, match=r"pred\['bbox'\] must be \(N, 7\)"):
        box_errors(gt, bad)


def test_waymo_metric_reports_the_breakdown_when_asked():
    from pc3d.evaluation import WaymoMetric

    boxes = torch.tensor([box(VEH, 0.0), box(CYC, 8.0)])
    moved = boxes.clone()
    moved[0, 0] += 0.6
    sample = dict(frame_id="f0", pred_boxes=moved, pred_scores=torch.tensor([0.9, 0.9]),
                  pred_labels=torch.tensor([0, 2]), gt_boxes=boxes, gt_labels=torch.tensor([0, 2]),
                  gt_num_points=torch.tensor([40, 40]), gt_difficulty=torch.tensor([1, 1]))
    for breakdown in (False, True):
        metric = WaymoMetric(error_breakdown=breakdown)
        metric.process({}, [sample])
        out = metric.evaluate(size=1)
        assert ("Vehicle/nearest_centre_m" in out) == breakdown
    assert out["Vehicle/nearest_centre_m"] == pytest.approx(0.6, abs=1e-5)
    assert out["Cyclist/nearest_iou_hit"] == 1.0 and out["Vehicle/nearest_found"] == 1.0
