// CUDA kernels of points_in_boxes (one thread per point, boxes scanned in index order so the first
// containing box wins, as on CPU) and points_in_boxes_mask (one thread per (point, box) pair, box
// fastest so that writes to the (N, M) mask are coalesced). Closed containment, float64 geometry.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "boxes/box_cuda_common.cuh"

namespace pc3d {
namespace boxes {
namespace {

template <typename scalar_t>
__global__ void first_box_kernel(const scalar_t* __restrict__ pts, const Box* __restrict__ boxes, int64_t n,
                                 int64_t m, int64_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const double x = pts[3 * i], y = pts[3 * i + 1], z = pts[3 * i + 2];
    int64_t found = -1;
    for (int64_t j = 0; j < m; ++j) {
      if (point_in_box(x, y, z, boxes[j])) {
        found = j;
        break;
      }
    }
    out[i] = found;
  }
}

template <typename scalar_t>
__global__ void mask_kernel(const scalar_t* __restrict__ pts, const Box* __restrict__ boxes, int64_t n,
                            int64_t m, bool* __restrict__ out) {
  const int64_t total = n * m;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t i = k / m, j = k - i * m;
    out[k] = point_in_box(pts[3 * i], pts[3 * i + 1], pts[3 * i + 2], boxes[j]);
  }
}

void check_inputs(const at::Tensor& points, const at::Tensor& boxes) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) == 3, "points must be (N, 3), got ", points.sizes());
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 7, "boxes must be (M, 7), got ", boxes.sizes());
  TORCH_CHECK(points.scalar_type() == at::kFloat || points.scalar_type() == at::kDouble,
              "points must be float32 or float64, got ", points.scalar_type());
  TORCH_CHECK(points.scalar_type() == boxes.scalar_type(), "points and boxes must have the same dtype");
  TORCH_CHECK(points.device() == boxes.device(), "points and boxes must be on the same device");
}

at::Tensor points_in_boxes_cuda(const at::Tensor& points_in, const at::Tensor& boxes_in) {
  check_inputs(points_in, boxes_in);
  const c10::cuda::CUDAGuard guard(points_in.device());
  const at::Tensor points = points_in.contiguous();
  const at::Tensor boxes = boxes_in.contiguous();
  const int64_t n = points.size(0), m = boxes.size(0);
  at::Tensor out = at::empty({n}, points.options().dtype(at::kLong));
  if (n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "points_in_boxes_cuda", [&] {
    const at::Tensor bb = make_boxes_cuda<scalar_t>(boxes);
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    first_box_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
        points.data_ptr<scalar_t>(), box_ptr(bb), n, m, out.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor points_in_boxes_mask_cuda(const at::Tensor& points_in, const at::Tensor& boxes_in) {
  check_inputs(points_in, boxes_in);
  const c10::cuda::CUDAGuard guard(points_in.device());
  const at::Tensor points = points_in.contiguous();
  const at::Tensor boxes = boxes_in.contiguous();
  const int64_t n = points.size(0), m = boxes.size(0);
  at::Tensor out = at::empty({n, m}, points.options().dtype(at::kBool));
  if (n == 0 || m == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "points_in_boxes_mask_cuda", [&] {
    const at::Tensor bb = make_boxes_cuda<scalar_t>(boxes);
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    mask_kernel<scalar_t><<<blocks_for(n * m), kThreads, 0, stream>>>(
        points.data_ptr<scalar_t>(), box_ptr(bb), n, m, out.data_ptr<bool>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CUDA, m) {
  m.impl("points_in_boxes", &points_in_boxes_cuda);
  m.impl("points_in_boxes_mask", &points_in_boxes_mask_cuda);
}

}  // namespace boxes
}  // namespace pc3d
