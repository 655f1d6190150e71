"""Training/evaluation plumbing on mmengine: atomic checkpoints, resume under torch's weights_only
loading, a tqdm progress bar hook, a CPU mixed-precision optimizer wrapper, multi-process training on CPU or GPU
(``distributed``, ``consistency``), mid-epoch resume (``resume``) and
precise BatchNorm statistics at the end of training (``precise_bn``).

Importing this package registers the hooks and applies the checkpoint-loading fix.
"""
from .checkpoint import allow_mmengine_checkpoints
from .consistency import DumpMetricsHook, ParameterConsistencyHook
from .distributed import CPUSyncBatchNorm, PC3DDistributedDataParallel, setup_distributed, teardown_distributed
from .hooks import BEVVisualizationHook, DisableAugmentationHook, ProgressBarHook
from .optim import CPUAutocastOptimWrapper
from .precise_bn import PreciseBNHook, recompute_bn_stats
from .resume import CheckpointError, ResumableEpochBasedTrainLoop, ResumeStateHook, find_resume_checkpoint
from .runner import Runner
from .schedulers import CosinePhasesLR, CosinePhasesMomentum

allow_mmengine_checkpoints()

__all__ = ["BEVVisualizationHook", "ProgressBarHook", "CPUAutocastOptimWrapper", "Runner", "allow_mmengine_checkpoints",
           "CosinePhasesLR", "CosinePhasesMomentum", "DisableAugmentationHook",
           "CheckpointError", "CPUSyncBatchNorm", "DumpMetricsHook", "ParameterConsistencyHook",
           "PC3DDistributedDataParallel", "PreciseBNHook", "ResumableEpochBasedTrainLoop", "ResumeStateHook",
           "find_resume_checkpoint", "recompute_bn_stats", "setup_distributed", "teardown_distributed"]
