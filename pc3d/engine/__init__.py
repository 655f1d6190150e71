"""Training/evaluation plumbing on mmengine: atomic checkpoints, resume under torch's weights_only
loading, a tqdm progress bar hook, a CPU mixed-precision optimizer wrapper, multi-process training on CPU or GPU
(``distributed``, ``consistency``) and mid-epoch resume (``resume``).

Importing this package registers the hooks and applies the checkpoint-loading fix.
"""
from .checkpoint import allow_mmengine_checkpoints
from .consistency import DumpMetricsHook, ParameterConsistencyHook
from .distributed import CPUSyncBatchNorm, PC3DDistributedDataParallel, setup_distributed, teardown_distributed
from .hooks import BEVVisualizationHook, ProgressBarHook
from .optim import CPUAutocastOptimWrapper
from .resume import CheckpointError, ResumableEpochBasedTrainLoop, ResumeStateHook, find_resume_checkpoint
from .runner import Runner

allow_mmengine_checkpoints()

__all__ = ["BEVVisualizationHook", "ProgressBarHook", "CPUAutocastOptimWrapper", "Runner", "allow_mmengine_checkpoints",
           "CheckpointError", "CPUSyncBatchNorm", "DumpMetricsHook", "ParameterConsistencyHook",
           "PC3DDistributedDataParallel", "ResumableEpochBasedTrainLoop", "ResumeStateHook", "find_resume_checkpoint",
           "setup_distributed", "teardown_distributed"]
