// CPU kernel of greedy rotated-BEV NMS. Boxes are visited by descending score (stable: on equal scores
// the lower index first); a box is dropped when its IoU with an already kept box is > iou_threshold.
// Candidates come from an x-sorted window and cheap bounds skip most exact IoUs.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>
#include <vector>

#include "boxes/box_checks_cpu.h"
#include "boxes/box_geometry.h"

namespace pc3d {
namespace boxes {
namespace {

at::Tensor nms_bev_rotated_cpu(const at::Tensor& boxes_in, const at::Tensor& scores_in,
                               double iou_threshold) {
  TORCH_CHECK(boxes_in.dim() == 2 && boxes_in.size(1) == 7, "boxes must be (N, 7), got ", boxes_in.sizes());
  TORCH_CHECK(scores_in.dim() == 1 && scores_in.size(0) == boxes_in.size(0), "scores must be (",
              boxes_in.size(0), ",), got ", scores_in.sizes());
  TORCH_CHECK(boxes_in.scalar_type() == at::kFloat || boxes_in.scalar_type() == at::kDouble,
              "boxes must be float32 or float64, got ", boxes_in.scalar_type());
  const at::Tensor boxes = boxes_in.contiguous();
  const at::Tensor scores = scores_in.contiguous().to(at::kDouble);
  const int64_t n = boxes.size(0);
  const double* ps = scores.data_ptr<double>();

  // Sorted order: descending score, ties by ascending index (stable_sort keeps index order).
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [ps](int64_t i, int64_t j) { return ps[i] > ps[j]; });

  std::vector<Box> bb(n);
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "nms_bev_rotated_cpu", [&] {
    check_box_values<scalar_t>(boxes, "boxes");
    const scalar_t* pb = boxes.data_ptr<scalar_t>();
    // ~50 ns per box: only worth an OpenMP region (whose idle workers spin afterwards) for large N.
    at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) bb[k] = make_box(pb + 7 * order[k]);
    });
  });

  // Only boxes whose centre x lies within r_k + r_max of box k can touch it (r: circumscribed radius),
  // so each kept box scans a window of the boxes sorted by x instead of all N.
  std::vector<std::pair<double, int64_t>> by_x(n);
  double r_max = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    by_x[k] = {bb[k].x, k};
    r_max = std::max(r_max, bb[k].radius);
  }
  std::sort(by_x.begin(), by_x.end());

  // Greedy sweep: suppressed boxes are never compared again, which is what makes greedy cheap when
  // boxes overlap heavily. The window scan runs in parallel only when it is long (>= 16k boxes):
  // shorter scans are cheaper inline than an OpenMP region per kept box.
  std::vector<uint8_t> suppressed(n, 0);
  std::vector<int64_t> keep;
  for (int64_t k = 0; k < n; ++k) {
    if (suppressed[k]) continue;
    keep.push_back(order[k]);
    const Box a = bb[k];
    // Slightly wider than the exact reach so rounding never drops a touching pair.
    const double reach = (a.radius + r_max) * (1.0 + 1e-9) + 1e-9;
    const int64_t lo = std::lower_bound(by_x.begin(), by_x.end(), std::make_pair(a.x - reach, int64_t(-1))) -
                       by_x.begin();
    const int64_t hi = std::upper_bound(by_x.begin(), by_x.end(), std::make_pair(a.x + reach, n)) - by_x.begin();
    // Each task writes only the suppressed[] entries of its own window slots (distinct boxes): no race.
    at::parallel_for(lo, hi, 16384, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const int64_t j = by_x[w].second;
        if (j > k && !suppressed[j] && nms_suppresses(a, bb[j], iou_threshold)) suppressed[j] = 1;
      }
    });
  }
  at::Tensor out = at::empty({static_cast<int64_t>(keep.size())}, boxes.options().dtype(at::kLong));
  if (!keep.empty()) std::memcpy(out.data_ptr<int64_t>(), keep.data(), keep.size() * sizeof(int64_t));
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CPU, m) { m.impl("nms_bev_rotated", &nms_bev_rotated_cpu); }

}  // namespace boxes
}  // namespace pc3d
