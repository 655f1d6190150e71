// Schemas of the box ops. Kernels: boxes_cpu.cpp (CPU), *_cuda.cu (CUDA). Python face: pc3d/ops/boxes.py.
// Boxes are (x, y, z, dx, dy, dz, heading), float32 or float64; all geometry is done in double.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(pc3d, m) {
  // (N, 3) points, (M, 7) boxes -> (N,) int64: first box containing the point, -1 for none.
  m.def("points_in_boxes(Tensor points, Tensor boxes) -> Tensor");
  // (N, 3) points, (M, 7) boxes -> (N, M) bool.
  m.def("points_in_boxes_mask(Tensor points, Tensor boxes) -> Tensor");
  // (N, 7), (M, 7) -> (N, M) pairwise rotated IoU, input dtype.
  m.def("iou_bev_rotated(Tensor a, Tensor b) -> Tensor");
  m.def("iou_3d_rotated(Tensor a, Tensor b) -> Tensor");
  // (N, 7) boxes, (N,) scores -> (K,) int64 kept indices by descending score (ties: lower index first).
  m.def("nms_bev_rotated(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor");
}
