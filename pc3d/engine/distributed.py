"""Multi-process training on mmengine: the process group backend follows the device, a DDP wrapper that
works on CPU, and a SyncBatchNorm that also synchronises CPU (gloo) batches.

mmengine 0.10.7 assumes CUDA in three places a CPU-only run hits:
- ``init_dist`` calls ``torch.cuda.set_device`` before ``init_process_group`` (an AttributeError on a
  CPU build of torch), so on CPU ``setup_distributed`` creates the process group itself (gloo);
- the Runner passes ``device_ids=[LOCAL_RANK]`` to DDP, which DDP refuses for a CPU module;
- ``sync_bn='torch'`` converts BN layers to ``torch.nn.SyncBatchNorm``, whose forward raises on CPU
  tensors.
On GPU everything is left to mmengine (``nccl``, ``torch.cuda.set_device(LOCAL_RANK)``, torch's SyncBN).
"""
import os
import subprocess
import warnings

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

LAUNCHERS = ("none", "pytorch", "slurm")
# torch.distributed.nn's all_reduce is the differentiable one (the functional collectives replacing it
# are not differentiable): silence its deprecation notice, raised on every SyncBN call.
warnings.filterwarnings("ignore", message=r".*torch\.distributed\.nn\.functional\.all_reduce is deprecated",
                        category=FutureWarning)


def default_backend() -> str:
    """'nccl' when this process can use a CUDA device, else 'gloo'."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def _slurm_env() -> None:
    """Sets torch.distributed's env:// variables from slurm's (one task per process, ``srun``)."""
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    if "MASTER_ADDR" not in os.environ:  # the first host of the allocation
        nodes = os.environ["SLURM_NODELIST"]
        os.environ["MASTER_ADDR"] = subprocess.getoutput(f"scontrol show hostname {nodes} | head -n1").strip()
    os.environ.setdefault("MASTER_PORT", "29500")


def setup_distributed(cfg) -> None:
    """Prepares ``cfg`` (an mmengine Config with ``launcher`` set) for a multi-process run.

    - ``env_cfg.dist_cfg.backend``: unset or ``'auto'`` -> ``default_backend()``; 'nccl' without CUDA
      raises ValueError.
    - CPU: creates the process group here (env:// rendezvous from torchrun or srun variables), so the
      Runner's ``init_dist`` (which needs CUDA) is skipped.
    - ``model_wrapper_cfg`` defaults to ``PC3DDistributedDataParallel``.
    Does nothing for ``launcher='none'``.
    """
    launcher = cfg.get("launcher", "none")
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    if launcher == "none":
        return
    env_cfg = cfg.setdefault("env_cfg", {})
    dist_cfg = env_cfg.setdefault("dist_cfg", {})
    backend = dist_cfg.get("backend") or "auto"
    if backend == "auto":
        backend = default_backend()
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("env_cfg.dist_cfg.backend='nccl' needs CUDA, but torch.cuda.is_available() is False; "
                         "use backend='gloo' (or leave it unset) for CPU training")
    dist_cfg["backend"] = backend
    if cfg.get("model_wrapper_cfg") is None:
        cfg.model_wrapper_cfg = dict(type="PC3DDistributedDataParallel")
    if launcher == "slurm" and not torch.cuda.is_available():
        _slurm_env()
    if not torch.cuda.is_available() and not dist.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise RuntimeError(f"--launcher {launcher} needs the rendezvous variables {missing}: start the run with "
                               "torchrun (tools/dist_train.sh) or srun")
        kwargs = {k: v for k, v in dist_cfg.items() if k not in ("backend", "timeout", "port")}
        if dist_cfg.get("timeout") is not None:
            import datetime

            kwargs["timeout"] = datetime.timedelta(seconds=dist_cfg["timeout"])
        dist.init_process_group(backend=backend, init_method="env://", **kwargs)


def teardown_distributed() -> None:
    """Ends a multi-process run cleanly: a barrier (no rank tears down while another still talks to it),
    then ``destroy_process_group``. Without it the process group dies during interpreter shutdown, where
    gloo's worker threads can still hold work objects and the process aborts ("terminate called without
    an active exception", SIGABRT) after a run that succeeded. No-op without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    import gc

    dist.barrier()
    gc.collect()  # DDP reducers / pending work objects that reference the group go first
    dist.destroy_process_group()


class CPUSyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are synchronised over the process group on CPU (gloo).

    ``use_cpu_sync_bn`` turns the ``torch.nn.SyncBatchNorm`` layers of a CPU model into this class (not a
    subclass of ``SyncBatchNorm``: DDP refuses those on CPU). In training with more than one process the
    per-channel count and sum are all-reduced, then the sum of squared deviations from the global mean
    (two passes: no cancellation from E[x^2] - E[x]^2); ``torch.distributed.nn`` all-reduce carries the
    gradient back to every rank. Running statistics are updated from the global batch, as torch's
    SyncBN does, so they stay equal on every rank. Otherwise (eval, one process) it is plain BN.
    Input: ``(B, C)``, ``(B, C, L)``, ``(B, C, H, W)`` or ``(B, C, D, H, W)`` float.
    """

    process_group = None

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        group = self.process_group or (dist.group.WORLD if dist.is_available() and dist.is_initialized() else None)
        if not self.training or group is None or dist.get_world_size(group) == 1:
            return super().forward(input)
        from torch.distributed.nn.functional import all_reduce

        self._check_input_dim(input)
        dims = [0] + list(range(2, input.dim()))
        shape = [1, -1] + [1] * (input.dim() - 2)
        x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
        local_n = x.new_tensor([x.numel() / max(x.size(1), 1)])
        total = all_reduce(torch.cat([local_n, x.sum(dims)]), group=group)
        n = total[0]
        if n.item() == 0:  # every rank's batch is empty: nothing to normalise or track
            return input
        mean = total[1:] / n
        var = all_reduce((x - mean.view(shape)).pow(2).sum(dims), group=group) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / self.num_batches_tracked.item()) if self.momentum is None else self.momentum
                unbiased = var * (n / (n - 1)) if n.item() > 1 else var
                self.running_mean.mul_(1 - momentum).add_(mean.detach().to(self.running_mean.dtype), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.detach().to(self.running_var.dtype), alpha=momentum)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input.dtype)


def use_cpu_sync_bn(module: nn.Module) -> int:
    """Switches every ``torch.nn.SyncBatchNorm`` in ``module`` to ``CPUSyncBatchNorm``. Both are
    ``_BatchNorm``s with the same parameters, buffers and ``process_group`` attribute (only the forward
    differs), so the class is swapped in place. Returns how many layers were switched."""
    count = 0
    for m in module.modules():
        if type(m) is nn.SyncBatchNorm:
            m.__class__ = CPUSyncBatchNorm
            count += 1
    return count


@MODEL_WRAPPERS.register_module()
class PC3DDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for any device: a CPU module gets ``device_ids=None`` (DDP refuses
    device ids for CPU modules) and CPU-capable SyncBN layers; a CUDA module is wrapped unchanged."""

    def __init__(self, module: nn.Module, device_ids=None, **kwargs):
        tensors = list(module.parameters()) + list(module.buffers())
        if not tensors or tensors[0].device.type == "cpu":
            device_ids = None
            switched = use_cpu_sync_bn(module)
            if switched:
                from mmengine.logging import print_log

                print_log(f"SyncBN on CPU: {switched} SyncBatchNorm layers synchronised over gloo (CPUSyncBatchNorm)",
                          logger="current")
        super().__init__(module=module, device_ids=device_ids, **kwargs)


__all__ = ["CPUSyncBatchNorm", "PC3DDistributedDataParallel", "default_backend", "setup_distributed",
           "use_cpu_sync_bn"]
