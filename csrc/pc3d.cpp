// The one pc3d op library. Each op adds its schema with TORCH_LIBRARY_FRAGMENT(pc3d, m) in
// csrc/<op>/<op>.cpp and its kernels with TORCH_LIBRARY_IMPL(pc3d, CPU|CUDA|Autograd, m), so adding
// an op never touches this file. Importing pc3d._C runs every registration.
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(pc3d, m) {}

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "pc3d compiled ops (torch.ops.pc3d)", -1, nullptr};
  return PyModule_Create(&module);
}
