"""Builds pc3d and its compiled op library ``pc3d._C``.

C++ sources (``csrc/**/*.cpp``) are always compiled; CUDA sources (``csrc/**/*.cu``) only when the
installed torch is a CUDA build and a toolkit is found, or when ``FORCE_CUDA=1``. Every op registers
itself into the one ``pc3d`` library (``TORCH_LIBRARY`` in ``csrc/pc3d.cpp``, fragments per op), so
the ops appear as ``torch.ops.pc3d.*`` once ``pc3d._C`` is imported.
"""
import glob
import os

from setuptools import find_packages, setup


def _extensions():
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    here = os.path.dirname(os.path.abspath(__file__))
    cpp = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    cu = sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True))
    # CUDA_HOME is None under a CPU torch: only add .cu files when both exist (or forced).
    force = os.environ.get("FORCE_CUDA", "0") == "1"
    with_cuda = bool(cu) and (force or (torch.version.cuda is not None and CUDA_HOME is not None))
    # -g0 and no torch/extension.h keep a C++ file at ~12 s; -fopenmp makes at::parallel_for parallel.
    cxx = ["-O3", "-g0", "-std=c++17", "-fopenmp", "-Wno-unused-function"]
    kwargs = dict(
        name="pc3d._C",
        include_dirs=[os.path.join(here, "csrc")],
        extra_link_args=["-fopenmp"],
        py_limited_api=False,
    )
    if with_cuda:
        nvcc = ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "-lineinfo"]
        return [CUDAExtension(sources=cpp + cu, define_macros=[("WITH_CUDA", None)],
                              extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs)]
    return [CppExtension(sources=cpp, extra_compile_args={"cxx": cxx}, **kwargs)]


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension.with_options(use_ninja=True)}


setup(
    name="pc3d",
    version="0.1.0",
    description="3D point-cloud and voxel perception: voxelizers, sparse transformers, detectors, metrics",
    packages=find_packages(include=["pc3d", "pc3d.*"]),
    python_requires=">=3.10",
    ext_modules=_extensions(),
    cmdclass=_cmdclass(),
    zip_safe=False,
)
