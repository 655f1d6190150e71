"""Compiler flags of ``pc3d._C``, read by ``setup.py`` (the build) and ``tools/check_cuda.py`` (the CUDA compile
check) so that the check compiles the sources exactly as the CUDA build does.

C++20: torch's own extension builder uses it, and the headers of torch >= 2.14 need it (``std::strong_ordering``
in ``c10/util/intrusive_ptr.h``).
"""
CXX_STD = "-std=c++20"
# -g0 and no torch/extension.h keep a C++ file at ~12 s; -fopenmp makes at::parallel_for parallel.
CXX_FLAGS = ["-O3", "-g0", CXX_STD, "-fopenmp", "-Wno-unused-function"]
NVCC_FLAGS = ["-O3", CXX_STD, "--expt-relaxed-constexpr", "-lineinfo"]
LINK_FLAGS = ["-fopenmp"]
CUDA_MACROS = [("WITH_CUDA", None)]
# What torch's CUDAExtension adds to every nvcc call for an extension named pc3d._C (the check adds it too).
EXTENSION_MACROS = [("TORCH_EXTENSION_NAME", "_C"), ("TORCH_API_INCLUDE_EXTENSION_H", None)]
