// CPU kernels of points_in_boxes (first containing box per point) and points_in_boxes_mask (N, M),
// parallel over points. Containment is closed (see box_geometry.h: point_in_box).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "boxes/box_checks_cpu.h"
#include "boxes/box_geometry.h"

namespace pc3d {
namespace boxes {
namespace {

void check_inputs(const at::Tensor& points, const at::Tensor& boxes) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) == 3, "points must be (N, 3), got ", points.sizes());
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 7, "boxes must be (M, 7), got ", boxes.sizes());
  TORCH_CHECK(points.scalar_type() == at::kFloat || points.scalar_type() == at::kDouble,
              "points must be float32 or float64, got ", points.scalar_type());
  TORCH_CHECK(points.scalar_type() == boxes.scalar_type(), "points and boxes must have the same dtype");
}

template <typename scalar_t>
std::vector<Box> make_boxes(const at::Tensor& boxes) {
  check_box_values<scalar_t>(boxes, "boxes");
  const scalar_t* pb = boxes.data_ptr<scalar_t>();
  std::vector<Box> out(boxes.size(0));
  for (int64_t j = 0; j < boxes.size(0); ++j) out[j] = make_box(pb + 7 * j);
  return out;
}

at::Tensor points_in_boxes_cpu(const at::Tensor& points_in, const at::Tensor& boxes_in) {
  check_inputs(points_in, boxes_in);
  const at::Tensor points = points_in.contiguous();
  const at::Tensor boxes = boxes_in.contiguous();
  const int64_t n = points.size(0), m = boxes.size(0);
  at::Tensor out = at::empty({n}, points.options().dtype(at::kLong));
  int64_t* po = out.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "points_in_boxes_cpu", [&] {
    const std::vector<Box> bb = make_boxes<scalar_t>(boxes);
    const scalar_t* pp = points.data_ptr<scalar_t>();
    // ~5 ns per (point, box) test: tasks of >= 64k tests amortise the OpenMP region.
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(m, 1));
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const double x = pp[3 * i], y = pp[3 * i + 1], z = pp[3 * i + 2];
        int64_t found = -1;
        for (int64_t j = 0; j < m; ++j) {
          if (point_in_box(x, y, z, bb[j])) {
            found = j;
            break;
          }
        }
        po[i] = found;
      }
    });
  });
  return out;
}

at::Tensor points_in_boxes_mask_cpu(const at::Tensor& points_in, const at::Tensor& boxes_in) {
  check_inputs(points_in, boxes_in);
  const at::Tensor points = points_in.contiguous();
  const at::Tensor boxes = boxes_in.contiguous();
  const int64_t n = points.size(0), m = boxes.size(0);
  at::Tensor out = at::empty({n, m}, points.options().dtype(at::kBool));
  bool* po = out.data_ptr<bool>();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "points_in_boxes_mask_cpu", [&] {
    const std::vector<Box> bb = make_boxes<scalar_t>(boxes);
    const scalar_t* pp = points.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(m, 1));
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const double x = pp[3 * i], y = pp[3 * i + 1], z = pp[3 * i + 2];
        bool* row = po + i * m;
        for (int64_t j = 0; j < m; ++j) row[j] = point_in_box(x, y, z, bb[j]);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CPU, m) {
  m.impl("points_in_boxes", &points_in_boxes_cpu);
  m.impl("points_in_boxes_mask", &points_in_boxes_mask_cpu);
}

}  // namespace boxes
}  // namespace pc3d
