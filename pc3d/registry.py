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
from mmengine.registry import DefaultScope, Registry


class PC3DRegistry(Registry):
    """A registry that resolves names in pc3d's scope whatever mmengine's current default scope is.

    mmengine looks names up in the registry of the *current default scope*; a Runner built earlier in
    the process with another ``default_scope`` (mmengine's default is ``'mmengine'``) would otherwise
    make ``TRANSFORMS.build(dict(type='RangeFilter'))`` fail. Names of other scopes still resolve
    through the parent chain or an explicit ``'scope.Name'`` prefix.
    """

    def build(self, cfg, *args, **kwargs):
        current = DefaultScope.get_current_instance()
        if current is None or current.scope_name == self.scope:
            return super().build(cfg, *args, **kwargs)
        with DefaultScope.overwrite_default_scope(self.scope):
            return super().build(cfg, *args, **kwargs)


MODELS = PC3DRegistry("model", parent=MMENGINE_MODELS, scope="pc3d", locations=["pc3d.models"])
DATASETS = PC3DRegistry("dataset", parent=MMENGINE_DATASETS, scope="pc3d", locations=["pc3d.datasets"])
TRANSFORMS = PC3DRegistry("transform", parent=MMENGINE_TRANSFORMS, scope="pc3d", locations=["pc3d.datasets"])
METRICS = PC3DRegistry("metric", parent=MMENGINE_METRICS, scope="pc3d", locations=["pc3d.evaluation"])
HOOKS = PC3DRegistry("hook", parent=MMENGINE_HOOKS, scope="pc3d", locations=["pc3d.engine"])
DATA_SAMPLERS = PC3DRegistry("data sampler", parent=MMENGINE_DATA_SAMPLERS, scope="pc3d", locations=["pc3d.datasets"])

# Child registries for the Runner's other lookups: with default_scope='pc3d' mmengine first searches a
# 'pc3d' registry of each kind and warns when there is none. They hold nothing of their own (pc3d's
# loop, optimizer wrapper and model wrapper are registered in mmengine's root registries, which these
# fall back to), so a config resolves exactly as before, without the warnings.
from mmengine import registry as _mm  # noqa: E402

_QUIET_KINDS = ["RUNNERS", "RUNNER_CONSTRUCTORS", "LOOPS", "MODEL_WRAPPERS", "WEIGHT_INITIALIZERS", "OPTIMIZERS",
                "OPTIM_WRAPPERS", "OPTIM_WRAPPER_CONSTRUCTORS", "PARAM_SCHEDULERS", "EVALUATOR", "VISUALIZERS",
                "VISBACKENDS", "LOG_PROCESSORS", "FUNCTIONS", "INFERENCERS", "TASK_UTILS"]
for _kind in _QUIET_KINDS:
    _parent = getattr(_mm, _kind, None)
    if _parent is not None:
        _where = ["pc3d.datasets"] if _kind == "FUNCTIONS" else ["pc3d.engine"]  # collate_batch lives there
        globals()[_kind] = PC3DRegistry(_parent.name, parent=_parent, scope="pc3d", locations=_where)

