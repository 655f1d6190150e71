"""ScanNet detection AP (axis-aligned 3D IoU, VOC area AP) and segmentation mIoU: hand-computed cases."""
import numpy as np
import pytest
import torch

from pc3d.evaluation.scannet import (SCANNET_DET_CLASSES, ScanNetDetMetric, axis_aligned_iou_3d,
                                     format_scannet_det_table, scannet_detection_metrics, voc_average_precision)
from pc3d.evaluation.scannet_seg import (SCANNET_SEG_CLASSES, ScanNetSegMetric, segmentation_confusion,
                                         segmentation_metrics)

CHAIR, TABLE, SOFA = (SCANNET_DET_CLASSES.index(n) for n in ("chair", "table", "sofa"))


def _box(x, y=0.0, z=0.0, d=2.0):
    return [x, y, z, d, d, d]


def _run(gt, gl, pred, pl, ps):
    """One scene."""
    return scannet_detection_metrics([np.array(gt)], [np.array(gl)], [np.array(pred)], [np.array(pl)],
                                     [np.array(ps)])


def test_iou_of_half_overlapping_boxes():
    # 2 m cubes shifted by 1 m: intersection 1*2*2 = 4, union 8 + 8 - 4 = 12.
    iou = axis_aligned_iou_3d(np.array([_box(0)]), np.array([_box(1), _box(5), _box(0)]))
    np.testing.assert_allclose(iou, [[1 / 3, 0.0, 1.0]])
    # A 7th (heading) column is ignored.
    assert axis_aligned_iou_3d(np.array([_box(0) + [0.3]]), np.array([_box(1) + [1.0]]))[0, 0] == pytest.approx(1 / 3)


def test_perfect_predictions():
    gt = [_box(0), _box(5), _box(10)]
    res = _run(gt, [CHAIR, TABLE, CHAIR], gt, [CHAIR, TABLE, CHAIR], [0.9, 0.8, 0.7])
    for t in (0.25, 0.5):
        assert res["ap"][t]["chair"] == 1.0 and res["ap"][t]["table"] == 1.0
        assert np.isnan(res["ap"][t]["sofa"])  # no GT sofa: undefined, not in the mean
        assert res["mAP"][t] == 1.0 and res["mAR"][t] == 1.0


def test_one_false_positive_ranked_first_and_last():
    # FP first: precision (0, 1/2) at recall (0, 1); the envelope is 1/2 over recall (0, 1]: AP 0.5.
    res = _run([_box(0)], [CHAIR], [_box(20), _box(0)], [CHAIR, CHAIR], [0.9, 0.8])
    assert res["ap"][0.25]["chair"] == pytest.approx(0.5) and res["recall"][0.5]["chair"] == 1.0
    # FP last: recall 1 is reached at precision 1: AP 1.
    res = _run([_box(0)], [CHAIR], [_box(20), _box(0)], [CHAIR, CHAIR], [0.1, 0.8])
    assert res["ap"][0.5]["chair"] == pytest.approx(1.0)


def test_one_false_negative():
    res = _run([_box(0), _box(6)], [CHAIR, CHAIR], [_box(0)], [CHAIR], [0.9])
    # precision 1 up to recall 1/2, then nothing: AP = 1/2, recall 1/2.
    assert res["ap"][0.25]["chair"] == pytest.approx(0.5) and res["recall"][0.25]["chair"] == 0.5
    assert res["mAR"][0.5] == 0.5


def test_iou_between_the_thresholds():
    res = _run([_box(0)], [TABLE], [_box(1)], [TABLE], [0.5])  # IoU 1/3
    assert res["ap"][0.25]["table"] == 1.0 and res["ap"][0.5]["table"] == 0.0
    assert res["mAP"] == {0.25: 1.0, 0.5: 0.0}


def test_second_prediction_on_a_taken_box_is_a_false_positive():
    # Both predictions overlap GT A best; the second does not fall back to the nearby GT B (VOC rule),
    # although its IoU with B (1/3) is above 0.25. precision (1, 1/2) at recall (1/2, 1/2): AP 0.5.
    gt = [_box(0), _box(1.2)]
    res = _run(gt, [SOFA, SOFA], [_box(0), _box(0.2)], [SOFA, SOFA], [0.9, 0.8])
    assert axis_aligned_iou_3d(np.array([_box(0.2)]), np.array(gt))[0, 1] > 0.25
    assert res["ap"][0.25]["sofa"] == pytest.approx(0.5) and res["recall"][0.25]["sofa"] == 0.5


def test_wrong_class_does_not_match_and_missing_class_scores_zero():
    res = _run([_box(0), _box(5)], [CHAIR, TABLE], [_box(0)], [TABLE], [0.9])
    assert res["ap"][0.25]["chair"] == 0.0 and res["ap"][0.25]["table"] == 0.0
    assert res["num_pred"]["table"] == 1 and res["mAP"][0.25] == 0.0


def _reference_ap(gts, preds, cls, thr):
    """Plain loop version of the VOC rules: rank by score, best-IoU GT, TP if free and IoU > thr."""
    dets = [(s, i, b) for i, (pb, pl, ps) in enumerate(preds) for b, l, s in zip(pb, pl, ps) if l == cls]
    dets.sort(key=lambda d: -d[0])
    npos = sum(int(np.sum(np.asarray(gl) == cls)) for _, gl in gts)
    taken, tp = set(), []
    for _, scene, box in dets:
        gb, gl = gts[scene]
        best, best_j = -1.0, None
        for j, (g, l) in enumerate(zip(gb, gl)):
            if l != cls:
                continue
            lo = np.maximum(np.subtract(box[:3], np.divide(box[3:], 2)), np.subtract(g[:3], np.divide(g[3:], 2)))
            hi = np.minimum(np.add(box[:3], np.divide(box[3:], 2)), np.add(g[:3], np.divide(g[3:], 2)))
            inter = np.prod(np.clip(hi - lo, 0, None))
            iou = inter / (np.prod(box[3:]) + np.prod(g[3:]) - inter)
            if iou > best:
                best, best_j = iou, j
        ok = best > thr and (scene, best_j) not in taken
        if ok:
            taken.add((scene, best_j))
        tp.append(ok)
    # Area under the precision envelope, computed point by point.
    ap, n_tp = 0.0, 0
    for k, ok in enumerate(tp):
        if ok:
            n_tp += 1
            later = [sum(tp[:m + 1]) / (m + 1) for m in range(k, len(tp))]
            ap += max(later) / npos
    return ap


def test_matches_a_plain_loop_reference_on_random_scenes():
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(5):
        m = rng.integers(3, 12)
        gb = np.column_stack([rng.uniform(0, 6, (m, 3)), rng.uniform(0.3, 2, (m, 3))])
        gl = rng.integers(0, 3, m)
        k = rng.integers(5, 20)
        src = rng.integers(0, m, k)
        pb = gb[src] + np.column_stack([rng.normal(0, 0.3, (k, 3)), rng.normal(0, 0.2, (k, 3))]).clip(-0.25, None)
        pl = np.where(rng.random(k) < 0.85, gl[src], rng.integers(0, 3, k))
        gts.append((gb, gl))
        preds.append((pb, pl, rng.permutation(k) / k + 0.01))  # distinct scores
    res = scannet_detection_metrics([g[0] for g in gts], [g[1] for g in gts], [p[0] for p in preds],
                                    [p[1] for p in preds], [p[2] for p in preds])
    for c in range(3):
        for t in (0.25, 0.5):
            assert res["ap"][t][SCANNET_DET_CLASSES[c]] == pytest.approx(_reference_ap(gts, preds, c, t), abs=1e-12)
    assert 0.0 < res["mAP"][0.5] < res["mAP"][0.25] < 1.0


def test_voc_ap_uses_every_point_not_eleven():
    # precision 1 at recall 0.05 then 0.5 up to recall 1: area = 0.05 * 1 + 0.95 * 0.5 = 0.525
    # (the 11-point rule would give (1 + 10 * 0.5) / 11 = 0.545).
    assert voc_average_precision(np.array([0.05, 0.05, 1.0]), np.array([1.0, 0.5, 0.5])) == pytest.approx(0.525)


def test_detection_bad_input():
    with pytest.raises(ValueError, match="one entry per scene"):
        scannet_detection_metrics([np.zeros((0, 6))], [], [], [], [])
    with pytest.raises(ValueError, match=r"gt_labels must be in \[0, 18\)"):
        _run([_box(0)], [18], [_box(0)], [0], [0.5])
    with pytest.raises(ValueError, match=r"pred_boxes\[0\] sizes"):
        _run([_box(0)], [0], [[0, 0, 0, 1, 0, 1]], [0], [0.5])
    with pytest.raises(ValueError, match=r"must be \(M, 6\)"):
        _run([_box(0)], [0], [[0, 0, 0, 1, 1]], [0], [0.5])
    with pytest.raises(ValueError, match="lengths"):
        _run([_box(0)], [0], [_box(0)], [0], [0.5, 0.4])


def test_mious_on_a_hand_computed_confusion_matrix():
    gt = np.array([0, 0, 0, 1, 1, 2, 2, 2, -1, -1])
    pred = np.array([0, 0, 1, 1, 1, 2, 0, 2, 2, 3])  # the two ignored points count nowhere
    cm = segmentation_confusion(pred, gt, num_classes=4, ignore_index=-1)
    np.testing.assert_array_equal(cm, [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    res = segmentation_metrics(cm, ("a", "b", "c", "d"))
    # IoU_a = 2 / (3 + 3 - 2), IoU_b = 2 / (2 + 3 - 2), IoU_c = 2 / (3 + 2 - 2); d absent everywhere: NaN.
    assert res["iou"]["a"] == pytest.approx(0.5)
    assert res["iou"]["b"] == pytest.approx(2 / 3) and res["iou"]["c"] == pytest.approx(2 / 3)
    assert np.isnan(res["iou"]["d"])
    assert res["mIoU"] == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    assert res["acc"] == pytest.approx(6 / 8) and res["mAcc"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_predicted_but_absent_class_has_iou_zero():
    res = segmentation_metrics(segmentation_confusion(np.array([0, 1]), np.array([0, 0]), 2), ("a", "b"))
    assert res["iou"] == {"a": 0.5, "b": 0.0} and res["mIoU"] == pytest.approx(0.25)


def test_segmentation_bad_input():
    with pytest.raises(ValueError, match="same number of points"):
        segmentation_confusion(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"gt labels must be in \[0, 20\) or ignore_index=255, got 20"):
        segmentation_confusion(np.zeros(2, int), np.array([0, 20]), ignore_index=255)
    with pytest.raises(ValueError, match=r"pred labels must be in \[0, 20\), got -1"):
        segmentation_confusion(np.array([0, -1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="integer labels"):
        segmentation_confusion(np.zeros(2), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"confusion must be \(20, 20\)"):
        segmentation_metrics(np.zeros((3, 3)))


def test_metric_classes_registered_and_accumulating():
    from pc3d.registry import METRICS

    assert METRICS.get("ScanNetDetMetric") is ScanNetDetMetric and METRICS.get("ScanNetSegMetric") is ScanNetSegMetric
    det = ScanNetDetMetric()
    det.process({}, [dict(gt_boxes=torch.tensor([_box(0)]), gt_labels=torch.tensor([CHAIR]),
                          pred_boxes=torch.tensor([_box(1)]), pred_labels=torch.tensor([CHAIR]),
                          pred_scores=torch.tensor([0.7]))])
    det.process({}, [dict(gt_boxes=np.array([_box(0)]), gt_labels=np.array([TABLE]), pred_boxes=np.zeros((0, 6)),
                          pred_labels=np.zeros(0, int), pred_scores=np.zeros(0))])
    out = det.compute_metrics(det.results)
    assert out["chair_AP_0.25"] == 1.0 and out["chair_AP_0.50"] == 0.0 and out["table_AP_0.25"] == 0.0
    assert out["mAP_0.25"] == pytest.approx(0.5) and out["mAP_0.50"] == 0.0
    seg = ScanNetSegMetric(ignore_index=-1)
    seg.process({}, [dict(pred_semantic=torch.tensor([0, 1, 1]), gt_semantic=torch.tensor([0, 1, -1]))])
    seg.process({}, [dict(pred_semantic=torch.tensor([1]), gt_semantic=torch.tensor([0]))])
    out = seg.compute_metrics(seg.results)
    # Summed confusion: wall 1 TP, 1 FN (as floor); floor 1 TP, 1 FP: both IoU 1/2; the rest absent.
    assert out["wall_IoU"] == pytest.approx(0.5) and out["floor_IoU"] == pytest.approx(0.5)
    assert out["mIoU"] == pytest.approx(0.5) and np.isnan(out["chair_IoU"]) and len(SCANNET_SEG_CLASSES) == 20
    with pytest.raises(ValueError, match="lacks 'gt_semantic'"):
        seg.process({}, [dict(pred_semantic=torch.tensor([0]))])


def test_table_lists_every_class():
    res = _run([_box(0)], [CHAIR], [_box(0)], [CHAIR], [0.9])
    text = format_scannet_det_table(res)
    assert all(n in text for n in SCANNET_DET_CLASSES) and "AP@0.25" in text
