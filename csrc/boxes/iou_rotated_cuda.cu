// CUDA kernels of the pairwise rotated IoUs: one thread per (i, j) pair, j fastest so that writes to
// the (N, M) output are coalesced. Same float64 geometry as the CPU kernel (box_geometry.h).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "boxes/box_cuda_common.cuh"

namespace pc3d {
namespace boxes {
namespace {

template <typename scalar_t, bool kThreeD>
__global__ void iou_kernel(const Box* __restrict__ a, const Box* __restrict__ b, int64_t n, int64_t m,
                           scalar_t* __restrict__ out) {
  const int64_t total = n * m;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t i = k / m, j = k - i * m;
    out[k] = static_cast<scalar_t>(kThreeD ? iou_3d(a[i], b[j]) : iou_bev(a[i], b[j]));
  }
}

template <bool kThreeD>
at::Tensor iou_rotated_cuda(const at::Tensor& a_in, const at::Tensor& b_in) {
  TORCH_CHECK(a_in.dim() == 2 && a_in.size(1) == 7, "a must be (N, 7), got ", a_in.sizes());
  TORCH_CHECK(b_in.dim() == 2 && b_in.size(1) == 7, "b must be (M, 7), got ", b_in.sizes());
  TORCH_CHECK(a_in.scalar_type() == at::kFloat || a_in.scalar_type() == at::kDouble,
              "a must be float32 or float64, got ", a_in.scalar_type());
  TORCH_CHECK(a_in.scalar_type() == b_in.scalar_type(), "a and b must have the same dtype");
  TORCH_CHECK(a_in.device() == b_in.device(), "a and b must be on the same device");
  const c10::cuda::CUDAGuard guard(a_in.device());
  const at::Tensor a = a_in.contiguous();
  const at::Tensor b = b_in.contiguous();
  const int64_t n = a.size(0), m = b.size(0);
  at::Tensor out = at::empty({n, m}, a.options());
  if (n == 0 || m == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "iou_rotated_cuda", [&] {
    const at::Tensor ba = make_boxes_cuda<scalar_t>(a);
    const at::Tensor bb = make_boxes_cuda<scalar_t>(b);
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    iou_kernel<scalar_t, kThreeD><<<blocks_for(n * m), kThreads, 0, stream>>>(
        box_ptr(ba), box_ptr(bb), n, m, out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CUDA, m) {
  m.impl("iou_bev_rotated", &iou_rotated_cuda<false>);
  m.impl("iou_3d_rotated", &iou_rotated_cuda<true>);
}

}  // namespace boxes
}  // namespace pc3d
