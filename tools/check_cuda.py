"""Compile-check every CUDA source in csrc/ against the headers of a CUDA build of torch.

The machines pc3d is developed on have no GPU and a CPU torch, so `setup.py` skips `.cu` files there.
This check still proves they compile: it fetches a CUDA torch wheel with pip (``pip download --no-deps``),
unpacks only ``torch/include/`` into ``.cache/cuda-torch/``, and runs ``nvcc -c`` for sm_80 and sm_90 on each
``.cu`` file with the flags and macros of the real CUDA build (``csrc/build_flags.py``, plus what torch's
``CUDAExtension`` adds: ``COMMON_NVCC_FLAGS``, the extension-name macros, ``-fPIC`` and the host C++ flags). Any compile error makes it exit non-zero (``make test`` runs it first).

Usage: python tools/check_cuda.py [--torch 2.14.1] [--jobs 2] [FILE.cu ...]
"""
import argparse
import concurrent.futures as cf
import glob
import os
import runpy
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = runpy.run_path(os.path.join(ROOT, "csrc", "build_flags.py"))


def nvcc_command(path: str, inc: str, out: str) -> list:
    """The nvcc call of the CUDA build for one source, against the headers in ``inc``."""
    try:
        from torch.utils.cpp_extension import COMMON_NVCC_FLAGS
    except ImportError:  # the check needs no torch of its own beyond the downloaded headers
        COMMON_NVCC_FLAGS = []
    macros = FLAGS["CUDA_MACROS"] + FLAGS["EXTENSION_MACROS"]
    host = ",".join(["-fPIC"] + [f for f in FLAGS["CXX_FLAGS"] if not f.startswith("-std")])
    return (["nvcc", "-c", path, "-o", out, "-gencode=arch=compute_80,code=sm_80",
             "-gencode=arch=compute_90,code=sm_90", "-I", inc, "-I", os.path.join(inc, "torch", "csrc", "api", "include"),
             "-I", os.path.join(ROOT, "csrc"), "-I", sysconfig.get_paths()["include"]]
            + [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in macros]
            + list(COMMON_NVCC_FLAGS) + list(FLAGS["NVCC_FLAGS"]) + ["--compiler-options", host,
                                                                    "-D_GLIBCXX_USE_CXX11_ABI=1"])


def fetch_headers(version: str, cache: str) -> str:
    """Return an include dir holding the CUDA torch ``version`` headers (downloaded once)."""
    inc = os.path.join(cache, f"torch-{version}", "include")
    if os.path.isdir(os.path.join(inc, "ATen")):
        return inc
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp,
                        f"torch=={version}"], check=True)
        wheels = glob.glob(os.path.join(tmp, "torch-*.whl"))
        if not wheels:
            raise SystemExit(f"pip download torch=={version} gave no wheel in {tmp}")
        staging = inc + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in zf.namelist():
                if name.startswith("torch/include/") and not name.endswith("/"):
                    dest = os.path.join(staging, name[len("torch/include/"):])
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    with zf.open(name) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        os.replace(staging, inc)  # atomic: a half-unpacked cache is never used
    return inc


def compile_one(path: str, inc: str, out_dir: str) -> tuple[str, bool, str, float]:
    start = time.time()
    cmd = nvcc_command(path, inc, os.path.join(out_dir, os.path.basename(path) + ".o"))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return path, proc.returncode == 0, proc.stdout + proc.stderr, time.time() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="CUDA sources (default: every csrc/**/*.cu)")
    ap.add_argument("--torch", default="2.14.1", help="version of the CUDA torch whose headers are used")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(ROOT, ".cache", "cuda-torch"))
    args = ap.parse_args()
    if shutil.which("nvcc") is None:
        print("nvcc not found: nothing checked")
        return 0
    files = args.files or sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*.cu"), recursive=True))
    if not files:
        print("no .cu files")
        return 0
    inc = fetch_headers(args.torch, args.cache)
    failed = 0
    with tempfile.TemporaryDirectory() as out_dir, cf.ThreadPoolExecutor(args.jobs) as pool:
        for path, ok, log, secs in pool.map(lambda f: compile_one(f, inc, out_dir), files):
            rel = os.path.relpath(path, ROOT)
            print(f"{'ok  ' if ok else 'FAIL'} {rel} ({secs:.0f} s)", flush=True)
            if not ok:
                failed += 1
                print(log)
    print(f"check_cuda: {len(files) - failed} passed, {failed} failed (sm_80 + sm_90, torch {args.torch} headers)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
