// CUDA kernels of the window partitioners, with the CPU kernels' semantics and output order: keys
// from partition_keys.h, a stable sort (ATen's), and the same group / set construction.
#include <ATen/core/Tensor.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/full.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/sub.h>
#include <ATen/ops/unique_consecutive.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "partition/partition_keys.h"

namespace pc3d {
namespace partition {
namespace {

using at::Tensor;
constexpr int kThreads = 256;

inline int64_t blocks_for(int64_t n) { return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)); }

#define PC3D_GRID_LOOP(i, n) for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

// Smallest offending row (or max value) into *bad, so the host can name it in the error.
__device__ bool voxel_ok(const int32_t* r, int64_t sx, int64_t sy, int64_t sz) {
  return r[0] >= 0 && r[1] >= 0 && r[2] >= 0 && r[3] >= 0 && r[3] < sx && r[2] < sy && r[1] < sz;
}

void raise_bad_row(const Tensor& coords, const Tensor& bad, int64_t sx, int64_t sy, int64_t sz) {
  const unsigned long long row = bad.cpu().data_ptr<int64_t>()[0];
  if (row == std::numeric_limits<unsigned long long>::max()) return;
  const Tensor r = coords[int64_t(row)].cpu();
  const int32_t* v = r.data_ptr<int32_t>();
  TORCH_CHECK_VALUE(false, "coords row ", row, " (b, z, y, x) = (", v[0], ", ", v[1], ", ", v[2], ", ", v[3],
                    ") is outside sparse_shape (D, H, W) = (", sz, ", ", sy, ", ", sx,
                    ") or has a negative batch index");
}

Tensor bad_flag(const Tensor& coords) {
  return at::full({1}, int64_t(-1), coords.options().dtype(at::kLong));  // all ones = no bad row
}

__global__ void flat_keys_kernel(const int32_t* c, int64_t V, FlatParams p, int64_t sx, int64_t sy, int64_t sz,
                                 int64_t K, int64_t* comp, unsigned long long* bad) {
  PC3D_GRID_LOOP(i, V) {
    const int32_t* r = c + 4 * i;
    if (!voxel_ok(r, sx, sy, sz)) {
      atomicMin(bad, (unsigned long long)i);
      comp[i] = 0;
      continue;
    }
    comp[i] = int64_t(r[0]) * K + flat_key(r[3], r[2], p);
  }
}

__global__ void div_kernel(const int64_t* x, int64_t n, int64_t d, int64_t* out) {
  PC3D_GRID_LOOP(i, n) { out[i] = x[i] / d; }
}

// Index of the last entry of the ascending array a[0..n) that is <= v.
__device__ int64_t upper_index(const int64_t* a, int64_t n, int64_t v) {
  int64_t lo = 0, hi = n;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (a[mid] <= v) lo = mid; else hi = mid;
  }
  return lo;
}

__global__ void flat_fill_kernel(const int64_t* perm, const int64_t* s_start, const int64_t* s_len,
                                 const int64_t* s_b, const int64_t* s_group0, int64_t nsamples, int64_t groups,
                                 int64_t G, bool fill_previous, int64_t* idx, int64_t* inv, int64_t* gb,
                                 bool* pad) {
  PC3D_GRID_LOOP(t, groups * G) {
    const int64_t g = t / G, j = t % G;
    const int64_t s = upper_index(s_group0, nsamples, g);
    const int64_t local = g - s_group0[s];
    const int64_t p0 = s_start[s] + local * G;
    const int64_t real = min(G, s_len[s] - local * G);
    // A short last group: slot j takes slot j of the previous group (unmasked), or repeats slot j % real.
    const bool prev = fill_previous && local > 0;
    const int64_t v = perm[j < real ? p0 + j : (prev ? p0 - G + j : p0 + j % real)];
    idx[t] = v;
    pad[t] = j >= real && !prev;
    if (j < real) inv[v] = t;
    if (j == 0) gb[g] = s_b[s];
  }
}

std::tuple<Tensor, Tensor, Tensor, Tensor> flat_window_partition_cuda(const Tensor& coords_in,
                                                                      at::IntArrayRef sparse_xyz,
                                                                      at::IntArrayRef window_xy, int64_t G,
                                                                      int64_t axis, bool shift, int64_t last_group) {
  TORCH_CHECK(coords_in.dim() == 2 && coords_in.size(1) == 4 && coords_in.scalar_type() == at::kInt,
              "flat_window_partition: coords must be (V, 4) int32");
  TORCH_CHECK(sparse_xyz.size() == 3 && window_xy.size() == 2 && G > 0 && (axis == 0 || axis == 1),
              "flat_window_partition: bad sparse_shape/window_shape/group_size/axis");
  TORCH_CHECK_VALUE(last_group == kFlatFillPrevious || last_group == kFlatFillRepeat,
                    "flat_window_partition: last_group must be ", kFlatFillPrevious, " (previous) or ",
                    kFlatFillRepeat, " (repeat), got ", last_group);
  c10::cuda::CUDAGuard guard(coords_in.device());
  const Tensor coords = coords_in.contiguous();
  const int64_t V = coords.size(0);
  const auto i64 = coords.options().dtype(at::kLong);
  if (V == 0) {
    return {at::empty({0, G}, i64), at::empty({0}, i64), at::empty({0}, i64),
            at::empty({0, G}, coords.options().dtype(at::kBool))};
  }
  const FlatParams p = make_flat_params(sparse_xyz[0], sparse_xyz[1], window_xy[0], window_xy[1], axis == 1, shift);
  // Per-sample key bound (the Python face checked that batch * K fits in 62 bits).
  const int64_t K = (p.axis_y ? p.m1 * ((sparse_xyz[0] + p.wx - 1) / p.wx + 2)
                              : p.n1 * ((sparse_xyz[1] + p.wy - 1) / p.wy + 2)) * p.n2 * p.m2;
  auto stream = c10::cuda::getCurrentCUDAStream();
  Tensor comp = at::empty({V}, i64);
  Tensor bad = bad_flag(coords);
  flat_keys_kernel<<<blocks_for(V), kThreads, 0, stream>>>(
      coords.data_ptr<int32_t>(), V, p, sparse_xyz[0], sparse_xyz[1], sparse_xyz[2], K, comp.data_ptr<int64_t>(),
      reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  raise_bad_row(coords, bad, sparse_xyz[0], sparse_xyz[1], sparse_xyz[2]);
  auto sorted = at::sort(comp, /*stable=*/true, 0, false);
  const Tensor& skey = std::get<0>(sorted);
  const Tensor perm = std::get<1>(sorted).contiguous();
  Tensor sb = at::empty({V}, i64);
  div_kernel<<<blocks_for(V), kThreads, 0, stream>>>(skey.data_ptr<int64_t>(), V, K, sb.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  // Samples are few: their bookkeeping is built on the host, like the CPU kernel does.
  auto uc = at::unique_consecutive(sb, false, true);
  const Tensor s_b = std::get<0>(uc).cpu(), s_len = std::get<2>(uc).cpu();
  const int64_t ns = s_b.size(0);
  std::vector<int64_t> start(ns), group0(ns + 1, 0);
  int64_t pos = 0;
  for (int64_t s = 0; s < ns; ++s) {
    const int64_t n = s_len.data_ptr<int64_t>()[s];
    start[s] = pos;
    pos += n;
    group0[s + 1] = group0[s] + (n + G - 1) / G;
  }
  const int64_t groups = group0[ns];
  auto host = at::TensorOptions().dtype(at::kLong);
  const Tensor d_start = at::from_blob(start.data(), {ns}, host).to(coords.device());
  const Tensor d_group0 = at::from_blob(group0.data(), {ns + 1}, host).to(coords.device());
  const Tensor d_len = s_len.to(coords.device()), d_b = s_b.to(coords.device());
  Tensor indices = at::empty({groups, G}, i64), inverse = at::empty({V}, i64), group_batch = at::empty({groups}, i64);
  Tensor padding = at::empty({groups, G}, coords.options().dtype(at::kBool));
  flat_fill_kernel<<<blocks_for(groups * G), kThreads, 0, stream>>>(
      perm.data_ptr<int64_t>(), d_start.data_ptr<int64_t>(), d_len.data_ptr<int64_t>(), d_b.data_ptr<int64_t>(),
      d_group0.data_ptr<int64_t>(), ns, groups, G, last_group == kFlatFillPrevious, indices.data_ptr<int64_t>(),
      inverse.data_ptr<int64_t>(), group_batch.data_ptr<int64_t>(), padding.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {indices, inverse, group_batch, padding};
}

// ----------------------------------------------------------------------------- windows (DSVT, SLA)
__global__ void window_keys_kernel(const int32_t* c, int64_t V, WindowParams p, int64_t sx, int64_t sy,
                                   int64_t sz, int64_t span, int64_t* comp0, int64_t* comp1,
                                   unsigned long long* bad) {
  PC3D_GRID_LOOP(i, V) {
    const int32_t* r = c + 4 * i;
    if (!voxel_ok(r, sx, sy, sz)) {
      atomicMin(bad, (unsigned long long)i);
      comp0[i] = 0;
      if (comp1) comp1[i] = 0;
      continue;
    }
    const int64_t w = window_id(r[0], r[1], r[2], r[3], p) * span;
    comp0[i] = span > 1 ? w + inwindow_key(r[1], r[2], r[3], p, 0) : w;
    if (comp1) comp1[i] = w + inwindow_key(r[1], r[2], r[3], p, 1);
  }
}

WindowParams make_params(at::IntArrayRef sparse_xyz, at::IntArrayRef window_xyz, at::IntArrayRef shift_xyz) {
  TORCH_CHECK(sparse_xyz.size() == 3 && window_xyz.size() == 3 && shift_xyz.size() == 3,
              "window ops: sparse_shape, window_shape and shift need 3 entries (x, y, z)");
  WindowParams p;
  for (int a = 0; a < 3; ++a) {
    TORCH_CHECK(sparse_xyz[a] > 0 && window_xyz[a] > 0 && shift_xyz[a] >= 0 && shift_xyz[a] <= window_xyz[a],
                "window ops: need sparse_shape > 0, window_shape > 0 and 0 <= shift <= window_shape");
    p.W[a] = window_xyz[a];
    p.sh[a] = shift_xyz[a];
    p.M[a] = (sparse_xyz[a] + p.W[a] - 1) / p.W[a] + 1;
  }
  return p;
}

__global__ void sets_fill_kernel(const int64_t* perm0, const int64_t* perm1, const int64_t* w_start,
                                 const int64_t* w_len, const int64_t* w_id, const int64_t* set0, int64_t nw,
                                 int64_t nsets, int64_t tau, int64_t* idx, bool* pad, int64_t* set_window) {
  PC3D_GRID_LOOP(t, nsets * tau) {
    const int64_t s = t / tau, j = t % tau;
    const int64_t w = upper_index(set0, nw, s);
    const int64_t k = s - set0[w], S = set0[w + 1] - set0[w], n = w_len[w];
    const int64_t r = set_slot_rank(k, j, n, S, tau);
    const bool repeat = j > 0 && set_slot_rank(k, j - 1, n, S, tau) == r;
    idx[t] = perm0[w_start[w] + r];
    idx[nsets * tau + t] = perm1[w_start[w] + r];
    pad[t] = pad[nsets * tau + t] = repeat;
    if (j == 0) set_window[s] = w_id[w];
  }
}

__global__ void window_bounds_kernel(const int64_t* counts, int64_t nw, int64_t tau, int64_t* n_sets) {
  PC3D_GRID_LOOP(w, nw) { n_sets[w] = (counts[w] + tau - 1) / tau; }
}

std::tuple<Tensor, Tensor, Tensor> rotated_set_partition_cuda(const Tensor& coords_in, at::IntArrayRef sparse_xyz,
                                                              at::IntArrayRef window_xyz, at::IntArrayRef shift_xyz,
                                                              int64_t tau) {
  TORCH_CHECK(coords_in.dim() == 2 && coords_in.size(1) == 4 && coords_in.scalar_type() == at::kInt,
              "rotated_set_partition: coords must be (V, 4) int32");
  TORCH_CHECK(tau > 0, "rotated_set_partition: set_size must be positive");
  const WindowParams p = make_params(sparse_xyz, window_xyz, shift_xyz);
  c10::cuda::CUDAGuard guard(coords_in.device());
  const Tensor coords = coords_in.contiguous();
  const int64_t V = coords.size(0);
  const auto i64 = coords.options().dtype(at::kLong);
  if (V == 0) {
    return {at::empty({2, 0, tau}, i64), at::empty({2, 0, tau}, coords.options().dtype(at::kBool)),
            at::empty({0}, i64)};
  }
  auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t span = p.W[0] * p.W[1] * p.W[2];
  Tensor comp0 = at::empty({V}, i64), comp1 = at::empty({V}, i64), bad = bad_flag(coords);
  window_keys_kernel<<<blocks_for(V), kThreads, 0, stream>>>(
      coords.data_ptr<int32_t>(), V, p, sparse_xyz[0], sparse_xyz[1], sparse_xyz[2], span,
      comp0.data_ptr<int64_t>(), comp1.data_ptr<int64_t>(),
      reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  raise_bad_row(coords, bad, sparse_xyz[0], sparse_xyz[1], sparse_xyz[2]);
  auto s0 = at::sort(comp0, true, 0, false);
  auto s1 = at::sort(comp1, true, 0, false);
  const Tensor perm0 = std::get<1>(s0).contiguous(), perm1 = std::get<1>(s1).contiguous();
  Tensor swin = at::empty({V}, i64);
  div_kernel<<<blocks_for(V), kThreads, 0, stream>>>(std::get<0>(s0).data_ptr<int64_t>(), V, span,
                                                     swin.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  auto uc = at::unique_consecutive(swin, false, true);
  const Tensor w_id = std::get<0>(uc), w_len = std::get<2>(uc);
  const int64_t nw = w_id.size(0);
  const Tensor w_start = at::sub(at::cumsum(w_len, 0), w_len);
  Tensor n_sets = at::empty({nw}, i64);
  window_bounds_kernel<<<blocks_for(nw), kThreads, 0, stream>>>(w_len.data_ptr<int64_t>(), nw, tau,
                                                                n_sets.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  Tensor set0 = at::zeros({nw + 1}, i64);
  set0.narrow(0, 1, nw).copy_(at::cumsum(n_sets, 0));
  const int64_t nsets = set0[nw].item<int64_t>();
  Tensor indices = at::empty({2, nsets, tau}, i64), set_window = at::empty({nsets}, i64);
  Tensor padding = at::empty({2, nsets, tau}, coords.options().dtype(at::kBool));
  if (nsets > 0) {
    sets_fill_kernel<<<blocks_for(nsets * tau), kThreads, 0, stream>>>(
        perm0.data_ptr<int64_t>(), perm1.data_ptr<int64_t>(), w_start.data_ptr<int64_t>(),
        w_len.data_ptr<int64_t>(), w_id.data_ptr<int64_t>(), set0.data_ptr<int64_t>(), nw, nsets, tau,
        indices.data_ptr<int64_t>(), padding.data_ptr<bool>(), set_window.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {indices, padding, set_window};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> sort_by_window_cuda(const Tensor& coords_in, at::IntArrayRef sparse_xyz,
                                                               at::IntArrayRef window_xyz,
                                                               at::IntArrayRef shift_xyz) {
  TORCH_CHECK(coords_in.dim() == 2 && coords_in.size(1) == 4 && coords_in.scalar_type() == at::kInt,
              "sort_by_window: coords must be (V, 4) int32");
  const WindowParams p = make_params(sparse_xyz, window_xyz, shift_xyz);
  c10::cuda::CUDAGuard guard(coords_in.device());
  const Tensor coords = coords_in.contiguous();
  const int64_t V = coords.size(0);
  const auto i64 = coords.options().dtype(at::kLong);
  if (V == 0) return {at::empty({0}, i64), at::empty({0}, i64), at::empty({0}, i64), at::empty({0}, i64)};
  auto stream = c10::cuda::getCurrentCUDAStream();
  Tensor comp = at::empty({V}, i64), bad = bad_flag(coords);
  window_keys_kernel<<<blocks_for(V), kThreads, 0, stream>>>(
      coords.data_ptr<int32_t>(), V, p, sparse_xyz[0], sparse_xyz[1], sparse_xyz[2], 1, comp.data_ptr<int64_t>(),
      nullptr, reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  raise_bad_row(coords, bad, sparse_xyz[0], sparse_xyz[1], sparse_xyz[2]);
  auto sorted = at::sort(comp, true, 0, false);
  auto uc = at::unique_consecutive(std::get<0>(sorted), false, true);
  const Tensor counts = std::get<2>(uc);
  return {std::get<1>(sorted).contiguous(), at::sub(at::cumsum(counts, 0), counts), counts, std::get<0>(uc)};
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CUDA, m) {
  m.impl("flat_window_partition", &flat_window_partition_cuda);
  m.impl("rotated_set_partition", &rotated_set_partition_cuda);
  m.impl("sort_by_window", &sort_by_window_cuda);
}

}  // namespace partition
}  // namespace pc3d
