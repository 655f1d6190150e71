// CUDA kernels of voxelize_hard and voxelize_dynamic, with the CPU kernels' semantics and order.
//
// Same algorithm as the CPU (no hash table, no atomics that decide an order):
//   1. key per point (sentinel = cells * B for dropped points, so they sort last);
//   2. cub stable radix sort of (key, point index) -> a voxel's points are one run, in input order;
//   3. run starts -> inclusive scan -> run id per sorted position;
//   4. runs sorted by (sample, first point index) = first-seen order per sample;
//   5. per-sample counts (integer atomics: the counts, not an order) -> offsets, max_voxels cut;
//   6. outputs written per sorted point / per voxel. One device->host copy (V and a status flag).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cub/cub.cuh>

#include <algorithm>
#include <tuple>

#include "voxelize/voxelize_common.h"

namespace pc3d {
namespace voxelize {
namespace {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

__global__ void keys_kernel(const float* __restrict__ pts, int64_t n, int64_t ncol, const int64_t* __restrict__ bidx,
                            VoxelGrid g, uint64_t sentinel, uint64_t* __restrict__ keys, int32_t* __restrict__ idx,
                            int32_t* __restrict__ point_coords, int64_t* __restrict__ status) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  int64_t c[3];
  const int64_t s = bidx ? bidx[i] : 0;
  const bool in_batch = s >= 0 && s < g.batch_size;
  if (!in_batch) status[1] = 1;  // every writer stores 1: no race on the value
  const bool ok = point_cell(pts + i * ncol, g, c) && in_batch;
  keys[i] = ok ? static_cast<uint64_t>(cell_key(g, s, c)) : sentinel;
  idx[i] = static_cast<int32_t>(i);
  if (point_coords) {
    int32_t* pc = point_coords + 4 * i;
    pc[0] = ok ? static_cast<int32_t>(s) : -1;
    pc[1] = ok ? static_cast<int32_t>(c[2]) : -1;
    pc[2] = ok ? static_cast<int32_t>(c[1]) : -1;
    pc[3] = ok ? static_cast<int32_t>(c[0]) : -1;
  }
}

__global__ void run_flags_kernel(const uint64_t* __restrict__ sk, int64_t n, uint64_t sentinel, int32_t* __restrict__ flags) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  flags[j] = sk[j] != sentinel && (j == 0 || sk[j] != sk[j - 1]);
}

// Per run g: start/end in the sorted order, and its ordering key (sample, first point index).
__global__ void runs_kernel(const uint64_t* __restrict__ sk, const int32_t* __restrict__ si,
                            const int32_t* __restrict__ run_incl, int64_t n, uint64_t sentinel, int64_t cells,
                            int32_t* __restrict__ run_start, int32_t* __restrict__ run_end,
                            uint64_t* __restrict__ order_key, int32_t* __restrict__ order_val) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  const int32_t num_runs = n > 0 ? run_incl[n - 1] : 0;
  if (j >= num_runs) {  // unused slots sort after every run
    order_key[j] = ~uint64_t(0);
    order_val[j] = -1;
  }
  if (sk[j] == sentinel) return;
  const int32_t g = run_incl[j] - 1;
  if (j == 0 || sk[j] != sk[j - 1]) {
    run_start[g] = static_cast<int32_t>(j);
    const uint64_t b = sk[j] / static_cast<uint64_t>(cells);
    order_key[g] = b * static_cast<uint64_t>(n) + static_cast<uint64_t>(si[j]);
    order_val[g] = g;
  }
  if (j == n - 1 || sk[j + 1] != sk[j]) run_end[g] = static_cast<int32_t>(j + 1);
}

__global__ void sample_count_kernel(const uint64_t* __restrict__ okey, int64_t n, int64_t* __restrict__ counts) {
  const int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (q >= n || okey[q] == ~uint64_t(0)) return;
  atomicAdd(reinterpret_cast<unsigned long long*>(counts + okey[q] / static_cast<uint64_t>(n)), 1ull);
}

// One thread: B is a batch size, small. sample_start[b] = first sorted run of sample b; voxel_off[b] =
// first output voxel of sample b after the max_voxels cut (max_voxels < 0: none); status[0] = V.
__global__ void offsets_kernel(const int64_t* __restrict__ counts, int64_t nb, int64_t max_voxels,
                               int64_t* __restrict__ sample_start, int64_t* __restrict__ voxel_off,
                               int64_t* __restrict__ status) {
  int64_t run = 0, vox = 0;
  for (int64_t b = 0; b < nb; ++b) {
    sample_start[b] = run;
    voxel_off[b] = vox;
    run += counts[b];
    vox += max_voxels < 0 ? counts[b] : min(counts[b], max_voxels);
  }
  status[0] = vox;
}

__global__ void assign_kernel(const uint64_t* __restrict__ okey, const int32_t* __restrict__ oval, int64_t n,
                              const int64_t* __restrict__ sample_start, const int64_t* __restrict__ voxel_off,
                              int64_t max_voxels, int32_t* __restrict__ run_voxel, int32_t* __restrict__ voxel_run) {
  const int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (q >= n || okey[q] == ~uint64_t(0)) return;
  const int64_t b = static_cast<int64_t>(okey[q] / static_cast<uint64_t>(n));
  const int64_t rank = q - sample_start[b];
  const int32_t g = oval[q];
  if (max_voxels >= 0 && rank >= max_voxels) {
    run_voxel[g] = -1;
  } else {
    const int64_t v = voxel_off[b] + rank;
    run_voxel[g] = static_cast<int32_t>(v);
    voxel_run[v] = g;
  }
}

__global__ void hard_points_kernel(const float* __restrict__ pts, int64_t n, int64_t ncol, const uint64_t* __restrict__ sk,
                                   const int32_t* __restrict__ si, const int32_t* __restrict__ run_incl,
                                   const int32_t* __restrict__ run_start, const int32_t* __restrict__ run_voxel,
                                   uint64_t sentinel, int64_t max_points, float* __restrict__ voxels) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= n || sk[j] == sentinel) return;
  const int32_t g = run_incl[j] - 1;
  const int64_t v = run_voxel[g];
  const int64_t k = j - run_start[g];
  if (v < 0 || k >= max_points) return;
  const float* src = pts + int64_t(si[j]) * ncol;
  float* dst = voxels + (v * max_points + k) * ncol;
  for (int64_t c = 0; c < ncol; ++c) dst[c] = src[c];
}

__global__ void voxel_meta_kernel(int64_t nv, VoxelGrid g, const uint64_t* __restrict__ sk,
                                  const int32_t* __restrict__ voxel_run, const int32_t* __restrict__ run_start,
                                  const int32_t* __restrict__ run_end, int64_t max_points, int32_t* __restrict__ coords,
                                  int32_t* __restrict__ num_points) {
  const int64_t v = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (v >= nv) return;
  const int32_t r = voxel_run[v];
  decode_key(g, static_cast<int64_t>(sk[run_start[r]]), coords + 4 * v);
  if (num_points) num_points[v] = static_cast<int32_t>(min(int64_t(run_end[r] - run_start[r]), max_points));
}

__global__ void point2voxel_kernel(int64_t n, const uint64_t* __restrict__ sk, const int32_t* __restrict__ si,
                                   const int32_t* __restrict__ run_incl, const int32_t* __restrict__ run_voxel,
                                   uint64_t sentinel, int64_t* __restrict__ p2v) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  p2v[si[j]] = sk[j] == sentinel ? -1 : run_voxel[run_incl[j] - 1];
}

// Device arrays of the grouping, all length n (runs, voxels <= n).
struct DeviceGrouping {
  at::Tensor sorted_keys, sorted_idx, run_incl, run_start, run_end, run_voxel, voxel_run;
  int64_t num_voxels = 0;
  uint64_t sentinel = 0;
};

DeviceGrouping group_points(const at::Tensor& pts, const at::Tensor& bidx, const VoxelGrid& g, int64_t max_voxels,
                            int32_t* point_coords) {
  const int64_t n = pts.size(0), ncol = pts.size(1);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  auto opt = pts.options();
  auto i32 = opt.dtype(at::kInt);
  auto u64 = opt.dtype(at::kLong);  // reinterpreted as uint64
  // Run order keys are sample * n + first point index, below the all-ones key of unused slots.
  TORCH_CHECK(g.batch_size <= INT64_MAX / std::max<int64_t>(n, 1), "voxelize: batch_size x N overflows int64");
  DeviceGrouping out;
  out.sentinel = static_cast<uint64_t>(g.cells * g.batch_size);
  at::Tensor status = at::zeros({2}, u64);  // [V, bad batch index]
  at::Tensor keys = at::empty({n}, u64), idx = at::empty({n}, i32);
  out.sorted_keys = at::empty({n}, u64);
  out.sorted_idx = at::empty({n}, i32);
  auto K = [](const at::Tensor& t) { return reinterpret_cast<uint64_t*>(t.data_ptr<int64_t>()); };
  keys_kernel<<<blocks_for(n), kThreads, 0, stream>>>(pts.data_ptr<float>(), n, ncol,
                                                      bidx.defined() ? bidx.data_ptr<int64_t>() : nullptr, g,
                                                      out.sentinel, K(keys), idx.data_ptr<int32_t>(), point_coords,
                                                      status.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  auto sort_pairs = [&](const uint64_t* kin, uint64_t* kout, const int32_t* vin, int32_t* vout, int end_bit) {
    size_t bytes = 0;
    C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, kin, kout, vin, vout, static_cast<int>(n), 0,
                                                   end_bit, stream));
    at::Tensor tmp = at::empty({static_cast<int64_t>(bytes)}, opt.dtype(at::kByte));
    C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(tmp.data_ptr(), bytes, kin, kout, vin, vout, static_cast<int>(n),
                                                   0, end_bit, stream));
  };
  sort_pairs(K(keys), K(out.sorted_keys), idx.data_ptr<int32_t>(), out.sorted_idx.data_ptr<int32_t>(),
             bits_for(out.sentinel));

  at::Tensor flags = at::empty({n}, i32);
  out.run_incl = at::empty({n}, i32);
  run_flags_kernel<<<blocks_for(n), kThreads, 0, stream>>>(K(out.sorted_keys), n, out.sentinel,
                                                           flags.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  {
    size_t bytes = 0;
    C10_CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, bytes, flags.data_ptr<int32_t>(),
                                                 out.run_incl.data_ptr<int32_t>(), static_cast<int>(n), stream));
    at::Tensor tmp = at::empty({static_cast<int64_t>(bytes)}, opt.dtype(at::kByte));
    C10_CUDA_CHECK(cub::DeviceScan::InclusiveSum(tmp.data_ptr(), bytes, flags.data_ptr<int32_t>(),
                                                 out.run_incl.data_ptr<int32_t>(), static_cast<int>(n), stream));
  }
  out.run_start = at::empty({n}, i32);
  out.run_end = at::empty({n}, i32);
  at::Tensor okey = at::empty({n}, u64), oval = at::empty({n}, i32);
  runs_kernel<<<blocks_for(n), kThreads, 0, stream>>>(K(out.sorted_keys), out.sorted_idx.data_ptr<int32_t>(),
                                                      out.run_incl.data_ptr<int32_t>(), n, out.sentinel, g.cells,
                                                      out.run_start.data_ptr<int32_t>(), out.run_end.data_ptr<int32_t>(),
                                                      K(okey), oval.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor okey_sorted = at::empty({n}, u64), oval_sorted = at::empty({n}, i32);
  // Unused slots hold all-ones keys, so sort every bit.
  sort_pairs(K(okey), K(okey_sorted), oval.data_ptr<int32_t>(), oval_sorted.data_ptr<int32_t>(), 64);

  at::Tensor counts = at::zeros({g.batch_size}, u64);
  at::Tensor sample_start = at::empty({g.batch_size}, u64), voxel_off = at::empty({g.batch_size}, u64);
  sample_count_kernel<<<blocks_for(n), kThreads, 0, stream>>>(K(okey_sorted), n, counts.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  offsets_kernel<<<1, 1, 0, stream>>>(counts.data_ptr<int64_t>(), g.batch_size, max_voxels,
                                      sample_start.data_ptr<int64_t>(), voxel_off.data_ptr<int64_t>(),
                                      status.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  out.run_voxel = at::empty({n}, i32);
  out.voxel_run = at::empty({n}, i32);
  assign_kernel<<<blocks_for(n), kThreads, 0, stream>>>(K(okey_sorted), oval_sorted.data_ptr<int32_t>(), n,
                                                        sample_start.data_ptr<int64_t>(), voxel_off.data_ptr<int64_t>(),
                                                        max_voxels, out.run_voxel.data_ptr<int32_t>(),
                                                        out.voxel_run.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const at::Tensor host = status.cpu();  // the one synchronisation: V decides the output shapes
  TORCH_CHECK(host.data_ptr<int64_t>()[1] == 0, "voxelize: batch_idx has values outside [0, ", g.batch_size, ")");
  out.num_voxels = host.data_ptr<int64_t>()[0];
  return out;
}

void check_inputs(const at::Tensor& points, const c10::optional<at::Tensor>& batch_idx) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) >= 3, "voxelize: points must be (N, C>=3), got ", points.sizes());
  TORCH_CHECK(points.scalar_type() == at::kFloat, "voxelize: points must be float32, got ", points.scalar_type());
  TORCH_CHECK(points.size(0) < INT32_MAX, "voxelize: at most 2^31 - 2 points, got ", points.size(0));
  if (batch_idx.has_value()) {
    TORCH_CHECK(batch_idx->dim() == 1 && batch_idx->size(0) == points.size(0), "voxelize: batch_idx must be (N,)");
    TORCH_CHECK(batch_idx->scalar_type() == at::kLong, "voxelize: batch_idx must be int64");
    TORCH_CHECK(batch_idx->device() == points.device(), "voxelize: batch_idx must be on the points' device");
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> voxelize_hard_cuda(
    const at::Tensor& points, const c10::optional<at::Tensor>& batch_idx, at::ArrayRef<double> voxel_size,
    at::ArrayRef<double> pc_range, at::IntArrayRef grid_size, int64_t batch_size, int64_t max_points_per_voxel,
    int64_t max_voxels) {
  check_inputs(points, batch_idx);
  TORCH_CHECK(max_points_per_voxel >= 1, "voxelize_hard: max_points_per_voxel must be >= 1");
  TORCH_CHECK(max_voxels >= 0, "voxelize_hard: max_voxels must be >= 0");
  const VoxelGrid g = make_grid(voxel_size.vec(), pc_range.vec(), grid_size.vec(), batch_size);
  c10::cuda::CUDAGuard guard(points.device());
  const at::Tensor pts = points.contiguous();
  const int64_t n = pts.size(0), ncol = pts.size(1);
  if (n == 0) {
    return {at::empty({0, max_points_per_voxel, ncol}, pts.options()), at::empty({0, 4}, pts.options().dtype(at::kInt)),
            at::empty({0}, pts.options().dtype(at::kInt))};
  }
  at::Tensor b;
  if (batch_idx.has_value()) b = batch_idx->contiguous();
  DeviceGrouping gr = group_points(pts, b, g, max_voxels, nullptr);
  const int64_t nv = gr.num_voxels;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor voxels = at::zeros({nv, max_points_per_voxel, ncol}, pts.options());
  at::Tensor coords = at::empty({nv, 4}, pts.options().dtype(at::kInt));
  at::Tensor num = at::empty({nv}, pts.options().dtype(at::kInt));
  if (nv == 0) return {voxels, coords, num};
  const uint64_t* sk = reinterpret_cast<const uint64_t*>(gr.sorted_keys.data_ptr<int64_t>());
  hard_points_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
      pts.data_ptr<float>(), n, ncol, sk, gr.sorted_idx.data_ptr<int32_t>(), gr.run_incl.data_ptr<int32_t>(),
      gr.run_start.data_ptr<int32_t>(), gr.run_voxel.data_ptr<int32_t>(), gr.sentinel, max_points_per_voxel,
      voxels.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  voxel_meta_kernel<<<blocks_for(nv), kThreads, 0, stream>>>(
      nv, g, sk, gr.voxel_run.data_ptr<int32_t>(), gr.run_start.data_ptr<int32_t>(), gr.run_end.data_ptr<int32_t>(),
      max_points_per_voxel, coords.data_ptr<int32_t>(), num.data_ptr<int32_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {voxels, coords, num};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> voxelize_dynamic_cuda(
    const at::Tensor& points, const c10::optional<at::Tensor>& batch_idx, at::ArrayRef<double> voxel_size,
    at::ArrayRef<double> pc_range, at::IntArrayRef grid_size, int64_t batch_size) {
  check_inputs(points, batch_idx);
  const VoxelGrid g = make_grid(voxel_size.vec(), pc_range.vec(), grid_size.vec(), batch_size);
  c10::cuda::CUDAGuard guard(points.device());
  const at::Tensor pts = points.contiguous();
  const int64_t n = pts.size(0);
  at::Tensor point_coords = at::empty({n, 4}, pts.options().dtype(at::kInt));
  at::Tensor p2v = at::empty({n}, pts.options().dtype(at::kLong));
  if (n == 0) return {point_coords, at::empty({0, 4}, pts.options().dtype(at::kInt)), p2v};
  at::Tensor b;
  if (batch_idx.has_value()) b = batch_idx->contiguous();
  DeviceGrouping gr = group_points(pts, b, g, -1, point_coords.data_ptr<int32_t>());
  const int64_t nv = gr.num_voxels;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor coords = at::empty({nv, 4}, pts.options().dtype(at::kInt));
  const uint64_t* sk = reinterpret_cast<const uint64_t*>(gr.sorted_keys.data_ptr<int64_t>());
  point2voxel_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, sk, gr.sorted_idx.data_ptr<int32_t>(),
                                                             gr.run_incl.data_ptr<int32_t>(),
                                                             gr.run_voxel.data_ptr<int32_t>(), gr.sentinel,
                                                             p2v.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (nv > 0) {
    voxel_meta_kernel<<<blocks_for(nv), kThreads, 0, stream>>>(
        nv, g, sk, gr.voxel_run.data_ptr<int32_t>(), gr.run_start.data_ptr<int32_t>(),
        gr.run_end.data_ptr<int32_t>(), 0, coords.data_ptr<int32_t>(), nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {point_coords, coords, p2v};
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CUDA, m) {
  m.impl("voxelize_hard", &voxelize_hard_cuda);
  m.impl("voxelize_dynamic", &voxelize_dynamic_cuda);
}

}  // namespace voxelize
}  // namespace pc3d
