"""Builds pc3d and its compiled op library ``pc3d._C``.

C++ sources (``csrc/**/*.cpp``) are always compiled; CUDA sources (``csrc/**/*.cu``) only when the
installed torch is a CUDA build and a toolkit is found, or when ``FORCE_CUDA=1``. Every op registers
itself into the one ``pc3d`` library (``TORCH_LIBRARY`` in ``csrc/pc3d.cpp``, fragments per op), so
the ops appear as ``torch.ops.pc3d.*`` once ``pc3d._C`` is imported.
"""
import glob
import os
import runpy

from setuptools import find_packages, setup

FLAGS = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "build_flags.py"))


def _extensions():
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    here = os.path.dirname(os.path.abspath(__file__))
    cpp = sorted(glob.glob(os.path.join("csrc", "**", "*.cpp"), recursive=True))
    cu = sorted(glob.glob(os.path.join("csrc", "**", "*.cu"), recursive=True))
    # CUDA_HOME is None under a CPU torch: only add .cu files when both exist (or forced).
    force = os.environ.get("FORCE_CUDA", "0") == "1"
    with_cuda = bool(cu) and (force or (torch.version.cuda is not None and CUDA_HOME is not None))
    cxx = list(FLAGS["CXX_FLAGS"])
    kwargs = dict(
        name="pc3d._C",
        include_dirs=[os.path.join(here, "csrc")],
        extra_link_args=list(FLAGS["LINK_FLAGS"]),
        py_limited_api=False,
    )
    if with_cuda:
        return [CUDAExtension(sources=cpp + cu, define_macros=list(FLAGS["CUDA_MACROS"]),
                              extra_compile_args={"cxx": cxx, "nvcc": list(FLAGS["NVCC_FLAGS"])}, **kwargs)]
    return [CppExtension(sources=cpp, extra_compile_args={"cxx": cxx}, **kwargs)]


def _cmdclass():
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension.with_options(use_ninja=True)}


def _requirements(name: str) -> list:
    """The requirement lines of ``requirements/<name>.txt`` (comments and blank lines dropped)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements", f"{name}.txt")
    with open(path) as fh:
        return [line.strip() for line in fh if line.strip() and not line.startswith("#")]


EXTRAS = {name: _requirements(name) for name in ("waymo", "nuscenes", "io", "viz", "any2point")}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="pc3d",
    version="0.1.0",
    description="3D point-cloud and voxel perception: voxelizers, sparse transformers, detectors, metrics",
    long_description=open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")).read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["pc3d", "pc3d.*"]),
    python_requires=">=3.10",
    install_requires=["torch>=2.4"] + _requirements("runtime"),
    extras_require=EXTRAS,
    ext_modules=_extensions(),
    cmdclass=_cmdclass(),
    zip_safe=False,
)
