// Helpers shared by the CUDA box kernels: turning (M, 7) boxes into a device array of Box (the
// cos/sin of each box is computed once, not once per pair) and launch sizes.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "boxes/box_geometry.h"

namespace pc3d {
namespace boxes {

constexpr int kThreads = 256;

inline int64_t blocks_for(int64_t work) {
  // Grid-stride loops cover the rest; 65535 blocks are plenty to fill any current GPU.
  return std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, 65535));
}

// out[k] = make_box(in[order ? order[k] : k]).
template <typename scalar_t>
__global__ void make_boxes_kernel(const scalar_t* __restrict__ in, const int64_t* __restrict__ order,
                                  int64_t m, Box* __restrict__ out) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < m;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t src = order != nullptr ? order[k] : k;
    out[k] = make_box(in + 7 * src);
  }
}

// Device buffer of m Box (a byte tensor keeps the memory owned by the caching allocator).
template <typename scalar_t>
at::Tensor make_boxes_cuda(const at::Tensor& boxes, const int64_t* order = nullptr) {
  const int64_t m = boxes.size(0);
  at::Tensor buf = at::empty({std::max<int64_t>(m, 1) * static_cast<int64_t>(sizeof(Box))},
                             boxes.options().dtype(at::kByte));
  if (m > 0) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    make_boxes_kernel<scalar_t><<<blocks_for(m), kThreads, 0, stream>>>(
        boxes.data_ptr<scalar_t>(), order, m, reinterpret_cast<Box*>(buf.data_ptr<uint8_t>()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return buf;
}

inline const Box* box_ptr(const at::Tensor& buf) { return reinterpret_cast<const Box*>(buf.data_ptr<uint8_t>()); }

}  // namespace boxes
}  // namespace pc3d
