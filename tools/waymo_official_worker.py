#!/usr/bin/env python
"""Runs the official Waymo detection metric (``waymo-open-dataset-tf-2-12-0``) for ``tools/benchmark.py --suite
metrics``. It runs under the Python of a separate environment that has that package (it never imports pc3d and pc3d
never imports TensorFlow): ``python tools/waymo_official_worker.py CASE.npz`` loads the golden-layout arrays
(``gt_*`` / ``pred_*``), builds the official config (object-type breakdown, LEVEL_1/2, Hungarian matcher, 3D boxes,
IoU 0.7 / 0.5 / 0.5, score cut-offs 0.00..1.00), prints ``ready``, then for every ``run`` line on stdin computes
the metric and prints one JSON line ``{"seconds": ..., "metrics": {"OBJECT_TYPE_TYPE_<C>_LEVEL_<L>": {"AP", "APH"}}}``.
"""
import json
import sys
import time

import numpy as np


def official_config() -> str:
    from waymo_open_dataset import label_pb2
    from waymo_open_dataset.protos import breakdown_pb2, metrics_pb2

    config = metrics_pb2.Config()
    config.breakdown_generator_ids.append(breakdown_pb2.Breakdown.OBJECT_TYPE)
    difficulty = config.difficulties.add()
    difficulty.levels.append(label_pb2.Label.LEVEL_1)
    difficulty.levels.append(label_pb2.Label.LEVEL_2)
    config.matcher_type = metrics_pb2.MatcherProto.TYPE_HUNGARIAN
    config.iou_thresholds.extend([0.0, 0.7, 0.5, 0.5, 0.5])
    config.box_type = label_pb2.Label.Box.TYPE_3D
    config.score_cutoffs.extend([i * 0.01 for i in range(101)])
    return config.SerializeToString()


def main() -> int:
    import tensorflow as tf
    from waymo_open_dataset.metrics.ops import py_metrics_ops

    data = np.load(sys.argv[1])
    config = official_config()
    names = [f"OBJECT_TYPE_TYPE_{c}_LEVEL_{lv}" for c in ("VEHICLE", "PEDESTRIAN", "SIGN", "CYCLIST") for lv in (1, 2)]
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t0 = time.perf_counter()
        out = py_metrics_ops.detection_metrics(
            prediction_bbox=tf.constant(data["pred_bbox"], tf.float32),
            prediction_type=tf.constant(data["pred_type"], tf.uint8),
            prediction_score=tf.constant(data["pred_score"], tf.float32),
            prediction_frame_id=tf.constant(data["pred_frame_id"], tf.int64),
            prediction_overlap_nlz=tf.zeros(len(data["pred_score"]), tf.bool),
            ground_truth_bbox=tf.constant(data["gt_bbox"], tf.float32),
            ground_truth_type=tf.constant(data["gt_type"], tf.uint8),
            ground_truth_frame_id=tf.constant(data["gt_frame_id"], tf.int64),
            ground_truth_difficulty=tf.constant(data["gt_difficulty"], tf.uint8),
            config=config)
        ap, aph = out[0].numpy(), out[1].numpy()
        seconds = time.perf_counter() - t0
        metrics = {n: {"AP": float(a), "APH": float(h)} for n, a, h in zip(names, ap, aph) if "SIGN" not in n}
        print(json.dumps({"seconds": seconds, "metrics": metrics}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
