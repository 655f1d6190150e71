"""pc3d's mmengine registries: configs name classes by ``type=`` and these build them.

Each registry is a child of mmengine's root registry of the same kind, so the Runner builds pc3d's
models, datasets, metrics and hooks from a config with ``default_scope='pc3d'``. ``locations`` are the
modules imported on first use, which keeps ``import pc3d`` free of heavy imports.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry("model", parent=MMENGINE_MODELS, scope="pc3d", locations=["pc3d.models"])
DATASETS = Registry("dataset", parent=MMENGINE_DATASETS, scope="pc3d", locations=["pc3d.datasets"])
TRANSFORMS = Registry("transform", parent=MMENGINE_TRANSFORMS, scope="pc3d", locations=["pc3d.datasets"])
METRICS = Registry("metric", parent=MMENGINE_METRICS, scope="pc3d", locations=["pc3d.evaluation"])
HOOKS = Registry("hook", parent=MMENGINE_HOOKS, scope="pc3d", locations=["pc3d.engine"])
DATA_SAMPLERS = Registry("data sampler", parent=MMENGINE_DATA_SAMPLERS, scope="pc3d", locations=["pc3d.datasets"])
