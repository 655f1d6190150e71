"""The package itself: cheap import, the op library loads, the benchmark harness measures honestly."""
import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

HEAVY = ["open3d", "transformers", "pyarrow", "nuscenes", "spconv", "mmengine", "tensorflow", "torchvision"]


def _modules_after(statement: str) -> set:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("statement", ["import pc3d", "import pc3d.ops"])
def test_import_does_not_pull_heavy_packages(statement):
    loaded = _modules_after(statement)
    assert not [m for m in HEAVY if m in loaded]


def test_every_schema_has_a_cpu_kernel():
    """Each op registered in the pc3d library runs on CPU (no schema without a kernel)."""
    import pc3d.ops  # noqa: F401

    schemas = [s for s in torch._C._jit_get_all_schemas() if s.name.startswith("pc3d::")]
    assert schemas, "pc3d._C registered no op"
    for schema in schemas:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(schema.name, "CPU"), schema.name


def test_harness_check_rejects_disagreeing_implementations():
    from pc3d.benchmark import Case, run_case

    case = Case(suite="t", name="wrong", impl_name="a", impl=lambda: 1, baseline_name="b", baseline=lambda: 2,
                check=lambda a, b: (_ for _ in ()).throw(AssertionError(f"{a} != {b}")), repeats=1, warmup=0)
    with pytest.raises(AssertionError, match="1 != 2"):
        run_case(case)


def test_harness_row_has_ratio_and_memory():
    from pc3d.benchmark import Case, run_case

    x = torch.randn(1000, 1000)
    case = Case(suite="t", name="mm", impl_name="matmul", impl=lambda: x @ x, baseline_name="loop",
                baseline=lambda: torch.stack([x[i] @ x for i in range(200)]), repeats=2, warmup=0)
    row = run_case(case)
    assert row["speedup"] == pytest.approx(row["baseline_median_ms"] / row["median_ms"], rel=1e-2)
    assert set(row) >= {"suite", "name", "impl", "baseline", "median_ms", "baseline_median_ms", "speedup",
                        "peak_mem_mb", "n"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the cuda suite has cases here")
def test_cuda_benchmark_suite_says_why_it_has_no_case_without_a_gpu(capsys):
    from pc3d.benchmark import discover_suites

    assert list(discover_suites()["cuda"]()) == []
    assert "no GPU" in capsys.readouterr().err


def test_models_frame_is_resized_to_exactly_the_asked_points():
    """suite models / cuda: a scan is subsampled without repeats, or tiled with only the added rows jittered."""
    import numpy as np

    from pc3d.benchmark.suite_models import resize_frame

    pts = np.random.default_rng(0).random((1000, 5)).astype(np.float32)
    down = resize_frame(pts, 600)
    assert down.shape == (600, 6) and not down[:, 0].any()
    assert np.unique(down[:, 1:].numpy(), axis=0).shape[0] == 600  # no point drawn twice
    up = resize_frame(pts, 2500).numpy()
    assert up.shape == (2500, 6)
    assert np.array_equal(up[:1000, 1:], pts)  # the scan itself, unchanged, first
    # Each added row copies a real row's features (random floats: they name the row) and moves its xyz ~1 cm.
    src = {float(f): i for i, f in enumerate(pts[:, 3])}
    rows = np.array([src[float(f)] for f in up[1000:, 4]])
    assert np.array_equal(up[1000:, 5], pts[rows, 4])
    moved = np.linalg.norm(up[1000:, 1:4] - pts[rows, :3], axis=1)
    assert moved.max() < 0.1 and np.median(moved) > 0.005


def test_peak_memory_sees_a_large_allocation():
    from pc3d.benchmark import measure_peak_rss_mb

    def alloc():
        t = torch.ones(64 * 1024 * 1024 // 4 * 4)  # 256 MiB, touched so it is resident
        return float(t[::4096].sum())

    peak = measure_peak_rss_mb(alloc)
    if peak is None:
        pytest.skip("/proc/self/clear_refs is not writable here: peak RSS cannot be reset")
    assert 200 < peak < 600


def test_registries_resolve_pc3d_names_under_another_default_scope():
    """A Runner built earlier with another default scope must not hide pc3d's registered classes."""
    from mmengine.registry import DefaultScope

    import pc3d.datasets  # noqa: F401  (registration)
    from pc3d.registry import TRANSFORMS

    with DefaultScope.overwrite_default_scope("mmengine"):
        t = TRANSFORMS.build(dict(type="RangeFilter", point_cloud_range=[-1, -1, -1, 1, 1, 1]))
        assert DefaultScope.get_current_instance().scope_name == "mmengine"
    assert type(t).__name__ == "RangeFilter"


def _imported_modules(path) -> set:
    """Every module a source file imports (absolute names; relative imports resolved against its package)."""
    import ast

    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_dependencies_run_one_way():
    """Loaders take nothing from the metrics (shared facts live in pc3d.classes / pc3d.geometry), and the Waymo
    metric's error breakdown does not import the metric module that calls it."""
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "pc3d" / "datasets").rglob("*.py"))
                 if any(m.startswith("pc3d.evaluation") for m in _imported_modules(p))]
    assert not offenders, f"datasets import pc3d.evaluation: {offenders}"
    box_errors = _imported_modules(ROOT / "pc3d" / "evaluation" / "box_errors.py")
    assert not any(m == "pc3d.evaluation.waymo" or m.startswith("pc3d.evaluation.waymo.") for m in box_errors)


def test_each_class_list_is_defined_once():
    """The class-name tuples are literal only in pc3d.classes; everything else imports them."""
    import re

    lists = [("Vehicle", "Pedestrian", "Cyclist"), ("cabinet", "bed", "chair"), ("wall", "floor", "cabinet"),
             ("car", "truck", "bus", "trailer", "construction_vehicle", "pedestrian"),
             ("pedestrian.moving", "pedestrian.sitting_lying_down")]
    pattern = re.compile("|".join(r"\(\s*" + r",\s*".join(f"[\"']{re.escape(w)}[\"']" for w in words)
                                  for words in lists))
    assert pattern.search('names = ("Vehicle", "Pedestrian", "Cyclist")')  # the pattern sees a restated list
    found = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "pc3d").rglob("*.py")) + sorted((ROOT / "tools").glob("*.py"))
             if pattern.search(p.read_text()) and p.name != "classes.py"]
    assert not found, f"class lists restated outside pc3d/classes.py: {found}"


def test_cuda_check_compiles_with_the_build_flags():
    """tools/check_cuda.py passes nvcc the standard, flags and macros setup.py builds the CUDA extension with."""
    import runpy

    flags = runpy.run_path(str(ROOT / "csrc" / "build_flags.py"))
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import check_cuda
    finally:
        sys.path.remove(str(ROOT / "tools"))
    cmd = check_cuda.nvcc_command("x.cu", "inc", "x.o")
    for flag in flags["NVCC_FLAGS"]:
        assert flag in cmd
    for name, value in flags["CUDA_MACROS"] + flags["EXTENSION_MACROS"]:
        assert (f"-D{name}" if value is None else f"-D{name}={value}") in cmd
    host = cmd[cmd.index("--compiler-options") + 1].split(",")
    assert set(f for f in flags["CXX_FLAGS"] if not f.startswith("-std")) <= set(host)
    setup_text = (ROOT / "setup.py").read_text()
    assert "-std=" not in setup_text and 'FLAGS["NVCC_FLAGS"]' in setup_text and 'FLAGS["CXX_FLAGS"]' in setup_text
