"""Batch collation: points concatenated with a sample-index column (no padding), labels as lists.

Registered in mmengine's ``FUNCTIONS`` registry as ``pc3d_collate_batch`` so a Runner config can say
``collate_fn=dict(type='pc3d_collate_batch')``.
"""
import torch
from mmengine.registry import FUNCTIONS

LIST_KEYS = ("gt_boxes", "gt_labels", "gt_num_points", "gt_difficulty")


def collate_batch(items):
    """Collates dataset items (dicts of numpy arrays or tensors, see ``SyntheticDataset``).

    Returns a dict:
        points: (sum N_i, 1 + C) float32, column 0 = sample index in the batch, then the item's columns.
        gt_boxes: list of (M_i, 7) float32; gt_labels, gt_num_points, gt_difficulty: lists of (M_i,) int64.
        frame_id: list of str; batch_size: int.
        Any other key: list of the items' values, unchanged.
    """
    if not items:
        raise ValueError("collate_batch got an empty list of items")
    pts = []
    for i, item in enumerate(items):
        p = torch.as_tensor(item["points"]).to(torch.float32)
        if p.ndim != 2:
            raise ValueError(f"item {i} ({item.get('frame_id')}): points must be (N, C), got shape {tuple(p.shape)}")
        pts.append(torch.cat([torch.full((len(p), 1), float(i)), p], 1))
    widths = {p.shape[1] for p in pts}
    if len(widths) > 1:
        raise ValueError(f"items have different point widths {sorted(w - 1 for w in widths)}")
    batch = {"points": torch.cat(pts, 0), "batch_size": len(items), "frame_id": [str(it["frame_id"]) for it in items]}
    for key in LIST_KEYS:
        if key in items[0]:
            dtype = torch.float32 if key == "gt_boxes" else torch.int64
            batch[key] = [torch.as_tensor(it[key]).to(dtype) for it in items]
    for key in items[0]:
        if key not in batch:
            batch[key] = [it[key] for it in items]
    return batch


FUNCTIONS.register_module(name="pc3d_collate_batch", module=collate_batch, force=True)
