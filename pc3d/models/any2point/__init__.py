"""Any2Point: frozen pretrained 1D (BERT) / 2D (DINOv2, ViT) transformers adapted to 3D point clouds.

point tokenizer (tokenizer.py) -> 3D-to-any virtual projection (projection.py) -> frozen blocks
(frozen.py) with Any-to-3D guided and bottleneck adapters (adapters.py), assembled in encoder.py ->
classification head (classifier.py). ``transformers`` is imported only when a frozen model is built.
"""
from .classifier import Any2PointClassifier, count_parameters
from .encoder import Any2PointBackbone
from .segmentor import Any2PointSegmentor
from .frozen import FrozenTransformer
from .projection import VirtualProjection
from .tokenizer import PointTokenizer, farthest_point_sample, knn_group

__all__ = ["Any2PointBackbone", "Any2PointClassifier", "Any2PointSegmentor", "FrozenTransformer", "PointTokenizer",
           "VirtualProjection", "count_parameters", "farthest_point_sample", "knn_group"]
