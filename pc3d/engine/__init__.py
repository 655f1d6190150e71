"""Training/evaluation plumbing on mmengine: atomic checkpoints, resume under torch's weights_only
loading, a tqdm progress bar hook and a CPU mixed-precision optimizer wrapper.

Importing this package registers the hooks and applies the checkpoint-loading fix.
"""
from .checkpoint import allow_mmengine_checkpoints
from .hooks import BEVVisualizationHook, ProgressBarHook
from .optim import CPUAutocastOptimWrapper
from .runner import Runner

allow_mmengine_checkpoints()

__all__ = ["BEVVisualizationHook", "ProgressBarHook", "CPUAutocastOptimWrapper", "Runner", "allow_mmengine_checkpoints"]
