#!/usr/bin/env python
"""Draw a bird's-eye-view PNG of a dataset frame: points, GT boxes (green) and, given a model, its
predicted boxes (red, with scores).

    python tools/visualize.py --data-root data/synthetic --split val --index 0 --out bev.png \\
        [--config configs/centerpoint/centerpoint_pillar_synthetic.py --checkpoint work_dirs/demo/train/epoch_10.pth]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default="data/synthetic", help="synthetic dataset folder")
    p.add_argument("--split", default="val")
    p.add_argument("--index", type=int, nargs="+", default=[0], help="frame indices to draw")
    p.add_argument("--out", default="bev.png", help="PNG path (with several indices: a folder)")
    p.add_argument("--config", help="detector config (with --checkpoint: draw its predictions)")
    p.add_argument("--checkpoint", help="trained weights for --config")
    p.add_argument("--score-thr", type=float, default=0.3, help="lowest prediction score drawn")
    args = p.parse_args(argv)
    if bool(args.config) != bool(args.checkpoint):
        p.error("--config and --checkpoint go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from pc3d.datasets import SyntheticDataset, collate_batch
    from pc3d.visualization import draw_bev

    model, pipeline, pc_range = None, [], None
    if args.config:
        from mmengine.config import Config

        import pc3d.engine  # noqa: F401  (checkpoint-loading fix)
        from pc3d.registry import MODELS

        cfg = Config.fromfile(args.config)
        model = MODELS.build(cfg.model).eval()
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu")["state_dict"])
        pipeline, pc_range = cfg.get("test_pipeline", []), cfg.get("point_cloud_range")
    dataset = SyntheticDataset(args.data_root, args.split, pipeline=pipeline)
    out = Path(args.out)
    for index in args.index:
        item = dataset[index]
        pred_boxes = pred_scores = None
        if model is not None:
            with torch.no_grad():
                batch = collate_batch([item])
                result = model(**model.data_preprocessor(batch, False), mode="predict")[0]
            pred_boxes, pred_scores = result["pred_boxes"], result["pred_scores"]
        path = out / f"{item['frame_id']}.png" if len(args.index) > 1 else out
        draw_bev(path, item["points"], item["gt_boxes"], pred_boxes, pred_scores, pc_range=pc_range,
                 score_threshold=args.score_thr, title=str(item["frame_id"]))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
