// CPU kernels of the pairwise rotated IoUs (BEV and 3D), parallel over rows of the (N, M) output.
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

void check_boxes(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 2 && t.size(1) == 7, name, " must be (N, 7), got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64, got ", t.scalar_type());
}

template <bool kThreeD>
at::Tensor iou_rotated_cpu(const at::Tensor& a_in, const at::Tensor& b_in) {
  check_boxes(a_in, "a");
  check_boxes(b_in, "b");
  TORCH_CHECK(a_in.scalar_type() == b_in.scalar_type(), "a and b must have the same dtype");
  const at::Tensor a = a_in.contiguous();
  const at::Tensor b = b_in.contiguous();
  const int64_t n = a.size(0), m = b.size(0);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "iou_rotated_check", [&] {
    check_box_values<scalar_t>(a, "a");
    check_box_values<scalar_t>(b, "b");
  });
  at::Tensor out = at::empty({n, m}, a.options());
  if (n == 0 || m == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "iou_rotated_cpu", [&] {
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* pb = b.data_ptr<scalar_t>();
    scalar_t* po = out.data_ptr<scalar_t>();
    // Precompute b once (cos/sin dominate otherwise); rows of a are built on the fly.
    std::vector<Box> bb(m);
    for (int64_t j = 0; j < m; ++j) bb[j] = make_box(pb + 7 * j);
    // ~100 ns per pair: aim for >= ~20k pairs per task.
    const int64_t grain = std::max<int64_t>(1, 20000 / std::max<int64_t>(m, 1));
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const Box ba = make_box(pa + 7 * i);
        scalar_t* row = po + i * m;
        for (int64_t j = 0; j < m; ++j) {
          row[j] = static_cast<scalar_t>(kThreeD ? iou_3d(ba, bb[j]) : iou_bev(ba, bb[j]));
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CPU, m) {
  m.impl("iou_bev_rotated", &iou_rotated_cpu<false>);
  m.impl("iou_3d_rotated", &iou_rotated_cpu<true>);
}

}  // namespace boxes
}  // namespace pc3d
