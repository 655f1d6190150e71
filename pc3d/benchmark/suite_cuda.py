"""Benchmark suite ``cuda``: pc3d's CUDA kernels against the same plain-PyTorch baselines run on the GPU.

Yields no case (and says why) without a GPU. Inputs are the ``partition`` and ``voxelize`` suites':
each real scan of the real-LiDAR folder (``harness.real_lidar_dir``) and their 150k-point synthetic frames. Cases per input:
  * ``voxelize``: hard voxelization at the Waymo settings vs the ``torch.unique`` dynamic reference's
    GPU run (the closest GPU baseline: no spconv CUDA build is assumed), and dynamic vs the same;
  * ``flat`` / ``dsvt`` / ``sla``: as in suite ``partition``, with those baselines on the GPU;
  * ``models``: suite ``models``' Waymo detectors (BN folded, random weights) on its simulated 150k-point
    frame (without open3d: the largest real scan resampled to 150k points), backbone alone
    and points-to-boxes, on the GPU against the same model on the CPU (the baseline; ``--threads``).
Kernel rows also carry the same op's pc3d CPU kernel time from this run (``cpu_kernel_ms``, at the
``--threads`` given) and both sides' peak CUDA memory (``cuda_peak_mb`` / ``baseline_cuda_peak_mb``; model rows
the GPU side's): ``peak_mem_mb`` (process RSS) says nothing about GPU memory. Timings synchronize the device, so a row's
milliseconds are the wall time of the whole call, kernel launches and host work included.
"""
import statistics
import sys
from typing import Callable, Iterator

import torch

from .harness import Case, _time, real_lidar_dir

SUITE = "cuda"


def _synced(fn: Callable) -> Callable:
    def call():
        out = fn()
        torch.cuda.synchronize()
        return out
    return call


def _cuda_peak_mb(fn: Callable) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return round(peak / 2**20, 2)


def _cpu_ms(fn: Callable, repeats: int = 5) -> float:
    return round(statistics.median(_time(fn, warmup=1, repeats=repeats)), 3)


def _case(name, impl_name, impl, cpu_impl, baseline_name, baseline, check, extra, repeats=7):
    """A Case timing ``impl`` against ``baseline`` on the GPU, with the CPU kernel and CUDA memory in extra."""
    impl, baseline = _synced(impl), _synced(baseline)
    extra = dict(extra, cpu_kernel_ms=_cpu_ms(cpu_impl), cuda_peak_mb=_cuda_peak_mb(impl),
                 baseline_cuda_peak_mb=_cuda_peak_mb(baseline), device=torch.cuda.get_device_name())
    return Case(SUITE, name, impl_name, impl, baseline_name, baseline, check, repeats=repeats, warmup=2, extra=extra)


def _to_cpu(out):
    return [t.cpu() for t in out] if isinstance(out, (tuple, list)) else out.cpu()


def _voxelize_cases(frame, pts_cpu) -> Iterator[Case]:
    from pc3d.ops import voxelize_dynamic, voxelize_hard
    from .suite_voxelize import PC_RANGE, SETTINGS, check_dynamic, unique_reference

    pts = pts_cpu.to("cuda")
    vsize, max_points, max_voxels = SETTINGS["waymo"]
    n = f"{len(pts) // 1000}k pts"

    def check_same_as_cpu(ours, _):
        cpu = voxelize_hard(pts_cpu, vsize, PC_RANGE, max_points, max_voxels)
        if not all(torch.equal(a.cpu(), b) for a, b in zip(ours, cpu)):
            raise AssertionError("CUDA voxelize_hard differs from the CPU kernel")

    yield _case(f"hard waymo {frame} ({n})", "pc3d.voxelize_hard cuda",
                lambda: voxelize_hard(pts, vsize, PC_RANGE, max_points, max_voxels),
                lambda: voxelize_hard(pts_cpu, vsize, PC_RANGE, max_points, max_voxels),
                "torch.unique reference cuda", lambda: unique_reference(pts, vsize, PC_RANGE), check_same_as_cpu,
                {"points": len(pts)})
    yield _case(f"dynamic waymo {frame} ({n})", "pc3d.voxelize_dynamic cuda",
                lambda: voxelize_dynamic(pts, vsize, PC_RANGE), lambda: voxelize_dynamic(pts_cpu, vsize, PC_RANGE),
                "torch.unique reference cuda", lambda: unique_reference(pts, vsize, PC_RANGE),
                lambda a, b: check_dynamic(type(a)(*_to_cpu(a)), _to_cpu(b)), {"points": len(pts)})


def _partition_cases(name, coords_cpu) -> Iterator[Case]:
    from pc3d.ops import scattered_linear_attention, sort_by_window
    from . import suite_partition as sp

    coords = coords_cpu.to("cuda")
    V = coords.shape[0]
    yield _case(f"flat 13x13 G144 x4 {name} V={V}", "pc3d.flat_window_partition cuda", lambda: sp.flat_x4(coords),
                lambda: sp.flat_x4(coords_cpu), "torch argsort+cut cuda", lambda: sp.flat_x4_baseline(coords),
                sp.check_flat_x4, {"voxels": V})
    yield _case(f"dsvt 12x12 tau36 {name} V={V}", "pc3d.rotated_set_partition cuda", lambda: sp.dsvt_sets(coords),
                lambda: sp.dsvt_sets(coords_cpu), "torch sort+gather cuda", lambda: sp.dsvt_sets_baseline(coords),
                sp.equal_outputs, {"voxels": V})

    grid = (1, sp.GRID, sp.GRID)
    q_cpu, k_cpu, v_cpu, grad_cpu = sp.sla_inputs(V)
    q, k, v = (t.detach().to("cuda").requires_grad_() for t in (q_cpu, k_cpu, v_cpu))
    grad = grad_cpu.to("cuda")
    seg, seg_cpu = sort_by_window(coords, grid, 12), sort_by_window(coords_cpu, grid, 12)
    yield _case(f"sla C128 h4 win12 fwd+bwd {name} V={V}", "pc3d.scattered_linear_attention cuda",
                sp.sla_step(scattered_linear_attention, q, k, v, grad, seg),
                sp.sla_step(scattered_linear_attention, q_cpu, k_cpu, v_cpu, grad_cpu, seg_cpu),
                "torch index_add_ cuda", sp.sla_step(sp.sla_baseline, q, k, v, grad, seg), sp.check_sla,
                {"voxels": V, "windows": int(seg.offsets.numel())}, repeats=5)


def _same_features(a, b):  # the detectors' boxes are not compared: random weights make near-ties
    torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-3 * float(b.abs().max()))


def _model_cases() -> Iterator[Case]:
    import numpy as np

    from pc3d.apis import init_model
    from . import suite_models

    try:  # suite models' frame; the simulator needs open3d
        source, points_cpu = "simulated 150k", suite_models.frame_points()
    except ImportError as exc:
        scans = sorted(real_lidar_dir().glob("*.bin"), key=lambda f: f.stat().st_size)
        if not scans:
            print(f"[cuda] no simulator ({exc}) and no real scan: model cases skipped", file=sys.stderr)
            return
        source = f"{scans[-1].stem} resampled to {suite_models.NUM_POINTS // 1000}k ({exc.name} missing)"
        points_cpu = suite_models.resize_frame(np.fromfile(scans[-1], dtype=np.float32).reshape(-1, 5))
    points = points_cpu.to("cuda")
    for name in suite_models.CONFIGS:
        cfg = str(suite_models.config_path(name))
        cpu = init_model(cfg, fuse_conv_bn=True)
        gpu = init_model(cfg, fuse_conv_bn=True)
        gpu.load_state_dict(cpu.state_dict())
        gpu = gpu.to("cuda")
        with torch.no_grad():
            vox_cpu = cpu.voxel_encoder(cpu.voxelizer(points_cpu, 1))
            vox = gpu.voxel_encoder(gpu.voxelizer(points, 1))

        kind = type(gpu.backbone3d).__name__
        extra = {"points": len(points), "voxels": int(vox.coords.shape[0]), "frame": source,
                 "device": torch.cuda.get_device_name()}
        for part, impl, base, check in (
                ("backbone3d", suite_models.backbone_call(gpu, vox), suite_models.backbone_call(cpu, vox_cpu),
                 _same_features),
                ("detector", suite_models.detector_call(gpu, points), suite_models.detector_call(cpu, points_cpu), None)):
            impl = _synced(impl)
            yield Case(SUITE, f"{name} {part}", f"{kind} cuda", impl, f"{kind} cpu", base, check, repeats=5,
                       warmup=2, extra=dict(extra, cuda_peak_mb=_cuda_peak_mb(impl)))


def cases() -> Iterator[Case]:
    if not torch.cuda.is_available():
        print("[cuda] no GPU (torch.cuda.is_available() is False): suite cuda has no cases here", file=sys.stderr)
        return
    from . import suite_partition, suite_voxelize

    for frame, pts in suite_voxelize.frames():
        yield from _voxelize_cases(frame, pts)
    for name, coords in suite_partition.inputs():
        yield from _partition_cases(name, coords)
    yield from _model_cases()
