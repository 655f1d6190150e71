// Scattered linear attention on CUDA, same math and outputs as sla_cpu.cpp. Every reduction is done
// by one thread in a fixed row order (no atomics), so results are deterministic. Temporaries are
// O(N*h) (denominators) and O(W*h*d*dv) (window states): never O(N*d*dv).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

namespace pc3d {
namespace partition {
namespace {

using at::Tensor;
constexpr int kThreads = 256;

inline int64_t blocks_for(int64_t n) { return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)); }

#define PC3D_GRID_LOOP(i, n) for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

template <typename T>
__device__ __forceinline__ T relu(T x) { return x > T(0) ? x : T(0); }

// row -> window (or -1 outside every window).
__global__ void row_window_kernel(const int64_t* off, const int64_t* cnt, int64_t W, int64_t* row_win) {
  for (int64_t w = blockIdx.x; w < W; w += gridDim.x)
    for (int64_t i = threadIdx.x; i < cnt[w]; i += blockDim.x) row_win[off[w] + i] = w;
}

// One block per (window, head); thread t owns entries t, t + blockDim, ... of KV (d x dv) and s (d).
template <typename T>
__global__ void state_kernel(const T* k, const T* v, const int64_t* off, const int64_t* cnt, int64_t W, int64_t H,
                             int64_t D, int64_t DV, T* kv, T* ks) {
  for (int64_t st = blockIdx.x; st < W * H; st += gridDim.x) {
    const int64_t w = st / H, h = st % H, r0 = off[w], r1 = off[w] + cnt[w];
    for (int64_t t = threadIdx.x; t < D * DV + D; t += blockDim.x) {
      T acc = T(0);
      if (t < D * DV) {
        const int64_t a = t / DV, e = t % DV;
        for (int64_t i = r0; i < r1; ++i) acc += relu(k[(i * H + h) * D + a]) * v[(i * H + h) * DV + e];
        kv[st * D * DV + t] = acc;
      } else {
        const int64_t a = t - D * DV;
        for (int64_t i = r0; i < r1; ++i) acc += relu(k[(i * H + h) * D + a]);
        ks[st * D + a] = acc;
      }
    }
  }
}

// den[i, h] = relu(q_i) . s + eps
template <typename T>
__global__ void den_kernel(const T* q, const int64_t* row_win, const T* ks, int64_t N, int64_t H, int64_t D, T eps,
                           T* den) {
  PC3D_GRID_LOOP(t, N * H) {
    const int64_t i = t / H, h = t % H, w = row_win[i];
    if (w < 0) { den[t] = T(1); continue; }
    T acc = eps;
    for (int64_t a = 0; a < D; ++a) acc += relu(q[t * D + a]) * ks[(w * H + h) * D + a];
    den[t] = acc;
  }
}

// out[i, h, e] = sum_a relu(q_a) KV[a, e] / den
template <typename T>
__global__ void out_kernel(const T* q, const int64_t* row_win, const T* kv, const T* den, int64_t N, int64_t H,
                           int64_t D, int64_t DV, T* out) {
  PC3D_GRID_LOOP(t, N * H * DV) {
    const int64_t ih = t / DV, e = t % DV, h = ih % H, w = row_win[ih / H];
    if (w < 0) { out[t] = T(0); continue; }
    const T* KV = kv + (w * H + h) * D * DV;
    T acc = T(0);
    for (int64_t a = 0; a < D; ++a) acc += relu(q[ih * D + a]) * KV[a * DV + e];
    out[t] = acc / den[ih];
  }
}

// dden[i, h] = -(g . out) / den (out recomputed from KV)
template <typename T>
__global__ void dden_kernel(const T* go, const T* q, const int64_t* row_win, const T* kv, const T* den, int64_t N,
                            int64_t H, int64_t D, int64_t DV, T* dden) {
  PC3D_GRID_LOOP(t, N * H) {
    const int64_t h = t % H, w = row_win[t / H];
    if (w < 0) { dden[t] = T(0); continue; }
    const T* KV = kv + (w * H + h) * D * DV;
    T gdot = T(0);
    for (int64_t e = 0; e < DV; ++e) {
      T num = T(0);
      for (int64_t a = 0; a < D; ++a) num += relu(q[t * D + a]) * KV[a * DV + e];
      gdot += go[t * DV + e] * num;
    }
    dden[t] = -gdot / (den[t] * den[t]);
  }
}

// dq[i, h, a] = [q > 0] (sum_e g_e / den KV[a, e] + dden s[a])
template <typename T>
__global__ void dq_kernel(const T* go, const T* q, const int64_t* row_win, const T* kv, const T* ks, const T* den,
                          const T* dden, int64_t N, int64_t H, int64_t D, int64_t DV, T* gq) {
  PC3D_GRID_LOOP(t, N * H * D) {
    const int64_t ih = t / D, a = t % D, h = ih % H, w = row_win[ih / H];
    if (w < 0 || q[t] <= T(0)) { gq[t] = T(0); continue; }
    const T* KV = kv + ((w * H + h) * D + a) * DV;
    T acc = dden[ih] * ks[(w * H + h) * D + a];
    for (int64_t e = 0; e < DV; ++e) acc += go[ih * DV + e] / den[ih] * KV[e];
    gq[t] = acc;
  }
}

// Per (window, head): dKV = grad_kv + sum_i relu(q_i)^T g_i / den_i, ds = grad_ks + sum_i dden_i relu(q_i).
template <typename T>
__global__ void dstate_kernel(const T* go, const T* q, const T* den, const T* dden, const T* gkv, const T* gks,
                              const int64_t* off, const int64_t* cnt, int64_t W, int64_t H, int64_t D, int64_t DV,
                              T* dkv, T* dks) {
  for (int64_t st = blockIdx.x; st < W * H; st += gridDim.x) {
    const int64_t w = st / H, h = st % H, r0 = off[w], r1 = off[w] + cnt[w];
    for (int64_t t = threadIdx.x; t < D * DV + D; t += blockDim.x) {
      if (t < D * DV) {
        const int64_t a = t / DV, e = t % DV;
        T acc = gkv ? gkv[st * D * DV + t] : T(0);
        for (int64_t i = r0; i < r1; ++i) {
          const int64_t ih = i * H + h;
          acc += relu(q[ih * D + a]) * go[ih * DV + e] / den[ih];
        }
        dkv[st * D * DV + t] = acc;
      } else {
        const int64_t a = t - D * DV;
        T acc = gks ? gks[st * D + a] : T(0);
        for (int64_t i = r0; i < r1; ++i) acc += dden[i * H + h] * relu(q[(i * H + h) * D + a]);
        dks[st * D + a] = acc;
      }
    }
  }
}

// dk[i, h, a] = [k > 0] (ds[a] + sum_e v_e dKV[a, e]);  dv[i, h, e] = sum_a relu(k_a) dKV[a, e]
template <typename T>
__global__ void dkv_rows_kernel(const T* k, const T* v, const int64_t* row_win, const T* dkv, const T* dks, int64_t N,
                                int64_t H, int64_t D, int64_t DV, T* gk, T* gv) {
  PC3D_GRID_LOOP(t, N * H * (D + DV)) {
    const int64_t ih = t / (D + DV), c = t % (D + DV), h = ih % H, w = row_win[ih / H];
    const T* dKV = w < 0 ? nullptr : dkv + (w * H + h) * D * DV;
    if (c < D) {
      const int64_t a = c;
      if (w < 0 || k[ih * D + a] <= T(0)) { gk[ih * D + a] = T(0); continue; }
      T acc = dks[(w * H + h) * D + a];
      for (int64_t e = 0; e < DV; ++e) acc += v[ih * DV + e] * dKV[a * DV + e];
      gk[ih * D + a] = acc;
    } else {
      const int64_t e = c - D;
      if (w < 0) { gv[ih * DV + e] = T(0); continue; }
      T acc = T(0);
      for (int64_t a = 0; a < D; ++a) acc += relu(k[ih * D + a]) * dKV[a * DV + e];
      gv[ih * DV + e] = acc;
    }
  }
}

Tensor row_windows(const Tensor& offsets, const Tensor& counts, int64_t N) {
  Tensor row_win = at::full({N}, int64_t(-1), offsets.options());
  const int64_t W = offsets.size(0);
  if (W > 0) {
    row_window_kernel<<<std::min<int64_t>(W, 65535), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        offsets.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), W, row_win.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return row_win;
}

std::tuple<Tensor, Tensor, Tensor> sla_forward_cuda(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                                    const Tensor& offsets_in, const Tensor& counts_in, double eps) {
  c10::cuda::CUDAGuard guard(q_in.device());
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const Tensor offsets = offsets_in.contiguous(), counts = counts_in.contiguous();
  TORCH_CHECK(q.dim() == 3 && k.sizes() == q.sizes() && v.dim() == 3 && v.size(0) == q.size(0) && v.size(1) == q.size(1),
              "scattered_linear_attention: q, k must be (N, h, d) and v (N, h, dv)");
  const int64_t N = q.size(0), H = q.size(1), D = q.size(2), DV = v.size(2), W = offsets.size(0);
  Tensor out = at::empty({N, H, DV}, v.options()), kv = at::empty({W, H, D, DV}, v.options());
  Tensor ks = at::empty({W, H, D}, v.options()), den = at::empty({N, H}, v.options());
  if (N == 0 && W == 0) return {out, kv, ks};
  auto stream = c10::cuda::getCurrentCUDAStream();
  const Tensor row_win = row_windows(offsets, counts, N);
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "scattered_linear_attention_cuda", [&] {
    if (W > 0) {
      state_kernel<scalar_t><<<std::min<int64_t>(W * H, 65535), kThreads, 0, stream>>>(
          k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), offsets.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), W,
          H, D, DV, kv.data_ptr<scalar_t>(), ks.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    den_kernel<scalar_t><<<blocks_for(N * H), kThreads, 0, stream>>>(
        q.data_ptr<scalar_t>(), row_win.data_ptr<int64_t>(), ks.data_ptr<scalar_t>(), N, H, D, scalar_t(eps),
        den.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    out_kernel<scalar_t><<<blocks_for(N * H * DV), kThreads, 0, stream>>>(
        q.data_ptr<scalar_t>(), row_win.data_ptr<int64_t>(), kv.data_ptr<scalar_t>(), den.data_ptr<scalar_t>(), N, H,
        D, DV, out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, kv, ks};
}

std::tuple<Tensor, Tensor, Tensor> sla_backward_cuda(const Tensor& grad_out, const std::optional<Tensor>& grad_kv,
                                                     const std::optional<Tensor>& grad_ksum, const Tensor& q_in,
                                                     const Tensor& k_in, const Tensor& v_in,
                                                     const Tensor& offsets_in, const Tensor& counts_in,
                                                     const Tensor& kv_in, const Tensor& ks_in, double eps) {
  c10::cuda::CUDAGuard guard(q_in.device());
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous(), go = grad_out.contiguous();
  const Tensor offsets = offsets_in.contiguous(), counts = counts_in.contiguous();
  const Tensor kv = kv_in.contiguous(), ks = ks_in.contiguous();
  const int64_t N = q.size(0), H = q.size(1), D = q.size(2), DV = v.size(2), W = offsets.size(0);
  TORCH_CHECK(go.sizes() == v.sizes() && kv.dim() == 4 && kv.size(0) == W && ks.dim() == 3 && ks.size(0) == W,
              "scattered_linear_attention_backward: shape mismatch");
  Tensor gkv = grad_kv.has_value() && grad_kv->defined() ? grad_kv->contiguous() : Tensor();
  Tensor gks = grad_ksum.has_value() && grad_ksum->defined() ? grad_ksum->contiguous() : Tensor();
  Tensor gq = at::empty({N, H, D}, q.options()), gk = at::empty({N, H, D}, q.options());
  Tensor gv = at::empty({N, H, DV}, v.options());
  if (N == 0) return {gq, gk, gv};
  auto stream = c10::cuda::getCurrentCUDAStream();
  const Tensor row_win = row_windows(offsets, counts, N);
  Tensor den = at::empty({N, H}, q.options()), dden = at::empty({N, H}, q.options());
  Tensor dkv = at::empty({W, H, D, DV}, q.options()), dks = at::empty({W, H, D}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "scattered_linear_attention_backward_cuda", [&] {
    const scalar_t* Q = q.data_ptr<scalar_t>();
    const int64_t* RW = row_win.data_ptr<int64_t>();
    den_kernel<scalar_t><<<blocks_for(N * H), kThreads, 0, stream>>>(Q, RW, ks.data_ptr<scalar_t>(), N, H, D,
                                                                    scalar_t(eps), den.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    dden_kernel<scalar_t><<<blocks_for(N * H), kThreads, 0, stream>>>(
        go.data_ptr<scalar_t>(), Q, RW, kv.data_ptr<scalar_t>(), den.data_ptr<scalar_t>(), N, H, D, DV,
        dden.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    dq_kernel<scalar_t><<<blocks_for(N * H * D), kThreads, 0, stream>>>(
        go.data_ptr<scalar_t>(), Q, RW, kv.data_ptr<scalar_t>(), ks.data_ptr<scalar_t>(), den.data_ptr<scalar_t>(),
        dden.data_ptr<scalar_t>(), N, H, D, DV, gq.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (W > 0) {
      dstate_kernel<scalar_t><<<std::min<int64_t>(W * H, 65535), kThreads, 0, stream>>>(
          go.data_ptr<scalar_t>(), Q, den.data_ptr<scalar_t>(), dden.data_ptr<scalar_t>(),
          gkv.defined() ? gkv.data_ptr<scalar_t>() : nullptr, gks.defined() ? gks.data_ptr<scalar_t>() : nullptr,
          offsets.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), W, H, D, DV, dkv.data_ptr<scalar_t>(),
          dks.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    dkv_rows_kernel<scalar_t><<<blocks_for(N * H * (D + DV)), kThreads, 0, stream>>>(
        k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), RW, dkv.data_ptr<scalar_t>(), dks.data_ptr<scalar_t>(), N, H,
        D, DV, gk.data_ptr<scalar_t>(), gv.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {gq, gk, gv};
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CUDA, m) {
  m.impl("scattered_linear_attention", &sla_forward_cuda);
  m.impl("scattered_linear_attention_backward", &sla_backward_cuda);
}

}  // namespace partition
}  // namespace pc3d
