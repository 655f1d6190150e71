// CUDA rotated-BEV NMS, bitmask style: boxes are sorted by descending score on the device (stable, so
// equal scores keep the lower index first, as on CPU); a kernel fills, for each sorted box i, a bitmask
// of the later boxes j it suppresses (nms_suppresses: IoU > threshold, shared with the CPU kernel);
// the greedy sweep over that mask runs on the host. Keeps exactly the boxes the CPU kernel keeps.
// Memory: N * ceil(N / 64) * 8 bytes for the mask (3.2 MB at N = 5000).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "boxes/box_cuda_common.cuh"

namespace pc3d {
namespace boxes {
namespace {

constexpr int kBits = 64;

// Block (row block, column block), kBits threads; thread t handles sorted box i = row block * 64 + t
// and sets bit b of word mask[i, column block] when box i suppresses box j = column block * 64 + b > i.
__global__ void nms_mask_kernel(const Box* __restrict__ boxes, int64_t n, int64_t col_blocks, double threshold,
                                unsigned long long* __restrict__ mask) {
  const int64_t row_block = blockIdx.y, col_block = blockIdx.x;
  if (col_block < row_block) return;  // only j > i matters
  __shared__ Box cols[kBits];
  const int64_t col_start = col_block * kBits;
  const int col_size = static_cast<int>(n - col_start < kBits ? n - col_start : kBits);
  if (threadIdx.x < col_size) cols[threadIdx.x] = boxes[col_start + threadIdx.x];
  __syncthreads();
  const int64_t i = row_block * kBits + threadIdx.x;
  if (i >= n) return;
  const Box a = boxes[i];
  unsigned long long bits = 0;
  for (int b = 0; b < col_size; ++b) {
    if (col_start + b > i && nms_suppresses(a, cols[b], threshold)) bits |= 1ULL << b;
  }
  mask[i * col_blocks + col_block] = bits;
}

at::Tensor nms_bev_rotated_cuda(const at::Tensor& boxes_in, const at::Tensor& scores_in, double iou_threshold) {
  TORCH_CHECK(boxes_in.dim() == 2 && boxes_in.size(1) == 7, "boxes must be (N, 7), got ", boxes_in.sizes());
  TORCH_CHECK(scores_in.dim() == 1 && scores_in.size(0) == boxes_in.size(0), "scores must be (",
              boxes_in.size(0), ",), got ", scores_in.sizes());
  TORCH_CHECK(boxes_in.scalar_type() == at::kFloat || boxes_in.scalar_type() == at::kDouble,
              "boxes must be float32 or float64, got ", boxes_in.scalar_type());
  TORCH_CHECK(boxes_in.device() == scores_in.device(), "boxes and scores must be on the same device");
  const c10::cuda::CUDAGuard guard(boxes_in.device());
  const int64_t n = boxes_in.size(0);
  if (n == 0) return at::empty({0}, boxes_in.options().dtype(at::kLong));
  const at::Tensor boxes = boxes_in.contiguous();
  const at::Tensor order = std::get<1>(at::sort(scores_in.contiguous(), /*stable=*/true, /*dim=*/0,
                                                /*descending=*/true)).contiguous();
  const int64_t col_blocks = (n + kBits - 1) / kBits;
  TORCH_CHECK(col_blocks <= 65535, "nms_bev_rotated on CUDA supports at most ", 65535 * kBits, " boxes, got ", n);
  at::Tensor mask = at::zeros({n, col_blocks}, boxes.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "nms_bev_rotated_cuda", [&] {
    const at::Tensor sorted = make_boxes_cuda<scalar_t>(boxes, order.data_ptr<int64_t>());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(col_blocks));
    nms_mask_kernel<<<grid, kBits, 0, stream>>>(box_ptr(sorted), n, col_blocks, iou_threshold,
                                                reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // Greedy sweep on the host (sequential by nature; the mask is small).
  const at::Tensor mask_cpu = mask.to(at::kCPU);
  const auto* words = reinterpret_cast<const unsigned long long*>(mask_cpu.data_ptr<int64_t>());
  std::vector<unsigned long long> removed(col_blocks, 0);
  std::vector<int64_t> keep_pos;
  for (int64_t i = 0; i < n; ++i) {
    if (removed[i / kBits] & (1ULL << (i % kBits))) continue;
    keep_pos.push_back(i);
    const unsigned long long* row = words + i * col_blocks;
    for (int64_t w = i / kBits; w < col_blocks; ++w) removed[w] |= row[w];
  }
  const at::Tensor keep_cpu =
      at::from_blob(keep_pos.data(), {static_cast<int64_t>(keep_pos.size())}, at::TensorOptions().dtype(at::kLong))
          .clone();
  return order.index_select(0, keep_cpu.to(order.device()));
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CUDA, m) { m.impl("nms_bev_rotated", &nms_bev_rotated_cuda); }

}  // namespace boxes
}  // namespace pc3d
