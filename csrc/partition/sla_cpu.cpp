// Scattered linear attention (ScatterFormer) on CPU. Rows are sorted by window; window w owns rows
// [offsets[w], offsets[w] + counts[w]). Per (window, head): KV = sum_i relu(k_i)^T v_i, s = sum_i relu(k_i),
// out_i = relu(q_i) KV / (relu(q_i) . s + eps). Rows are streamed, so the only d x d memory is the
// per-window state (W*h*d*dv); the backward recomputes row terms and is parallel over windows only,
// each window writing its own rows, so results do not depend on the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

namespace pc3d {
namespace partition {
namespace {

using at::Tensor;

void check_segments(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& offsets, const Tensor& counts) {
  TORCH_CHECK(q.dim() == 3 && k.sizes() == q.sizes() && v.dim() == 3 && v.size(0) == q.size(0) &&
                  v.size(1) == q.size(1),
              "scattered_linear_attention: q, k must be (N, h, d) and v (N, h, dv)");
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "scattered_linear_attention: q, k, v must share a dtype");
  TORCH_CHECK(offsets.scalar_type() == at::kLong && counts.scalar_type() == at::kLong && offsets.dim() == 1 &&
                  counts.sizes() == offsets.sizes(),
              "scattered_linear_attention: offsets and counts must be (W,) int64");
  const int64_t N = q.size(0), W = offsets.size(0);
  const int64_t* o = offsets.data_ptr<int64_t>();
  const int64_t* n = counts.data_ptr<int64_t>();
  for (int64_t w = 0; w < W; ++w) {
    TORCH_CHECK(o[w] >= 0 && n[w] >= 0 && o[w] + n[w] <= N, "scattered_linear_attention: window ", w,
                " rows out of range");
  }
}

template <typename T>
void sla_forward_kernel(const T* q, const T* k, const T* v, const int64_t* off, const int64_t* cnt, int64_t W,
                        int64_t H, int64_t D, int64_t DV, double eps_d, T* out, T* kv, T* ks) {
  const T eps = T(eps_d);
  at::parallel_for(0, W, 1, [&](int64_t w0, int64_t w1) {
    std::vector<T> qa(D), acc(DV);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t r0 = off[w], r1 = off[w] + cnt[w];
      for (int64_t h = 0; h < H; ++h) {
        T* KV = kv + (w * H + h) * D * DV;
        T* S = ks + (w * H + h) * D;
        std::fill(KV, KV + D * DV, T(0));
        std::fill(S, S + D, T(0));
        for (int64_t i = r0; i < r1; ++i) {
          const T* kr = k + (i * H + h) * D;
          const T* vr = v + (i * H + h) * DV;
          for (int64_t a = 0; a < D; ++a) {
            const T ka = kr[a] > T(0) ? kr[a] : T(0);
            if (ka == T(0)) continue;  // ReLU zeros contribute nothing
            S[a] += ka;
            T* row = KV + a * DV;
            for (int64_t e = 0; e < DV; ++e) row[e] += ka * vr[e];
          }
        }
        for (int64_t i = r0; i < r1; ++i) {
          const T* qr = q + (i * H + h) * D;
          T den = eps;
          std::fill(acc.begin(), acc.end(), T(0));
          for (int64_t a = 0; a < D; ++a) {
            const T x = qr[a] > T(0) ? qr[a] : T(0);
            if (x == T(0)) continue;
            den += x * S[a];
            const T* row = KV + a * DV;
            for (int64_t e = 0; e < DV; ++e) acc[e] += x * row[e];
          }
          T* orow = out + (i * H + h) * DV;
          for (int64_t e = 0; e < DV; ++e) orow[e] = acc[e] / den;
        }
      }
    }
  });
}

template <typename T>
void sla_backward_kernel(const T* go, const T* gkv, const T* gks, const T* q, const T* k, const T* v,
                         const int64_t* off, const int64_t* cnt, const T* kv, const T* ks, int64_t W, int64_t H,
                         int64_t D, int64_t DV, double eps_d, T* gq, T* gk, T* gv) {
  const T eps = T(eps_d);
  at::parallel_for(0, W, 1, [&](int64_t w0, int64_t w1) {
    std::vector<T> dKV(D * DV), dS(D), num(DV), gn(DV), qa(D);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t r0 = off[w], r1 = off[w] + cnt[w];
      for (int64_t h = 0; h < H; ++h) {
        const int64_t st = w * H + h;
        const T* KV = kv + st * D * DV;
        const T* S = ks + st * D;
        if (gkv) std::copy(gkv + st * D * DV, gkv + (st + 1) * D * DV, dKV.begin());
        else std::fill(dKV.begin(), dKV.end(), T(0));
        if (gks) std::copy(gks + st * D, gks + (st + 1) * D, dS.begin());
        else std::fill(dS.begin(), dS.end(), T(0));
        // Pass 1 (rows as queries): grad of q, and the window's dKV and ds.
        for (int64_t i = r0; i < r1; ++i) {
          const T* qr = q + (i * H + h) * D;
          const T* g = go + (i * H + h) * DV;
          T den = eps;
          std::fill(num.begin(), num.end(), T(0));
          for (int64_t a = 0; a < D; ++a) {
            qa[a] = qr[a] > T(0) ? qr[a] : T(0);
            if (qa[a] == T(0)) continue;
            den += qa[a] * S[a];
            const T* row = KV + a * DV;
            for (int64_t e = 0; e < DV; ++e) num[e] += qa[a] * row[e];
          }
          T gdotnum = T(0);
          for (int64_t e = 0; e < DV; ++e) {
            gn[e] = g[e] / den;
            gdotnum += g[e] * num[e];
          }
          const T dden = -gdotnum / (den * den);
          T* gqr = gq + (i * H + h) * D;
          for (int64_t a = 0; a < D; ++a) {
            if (qa[a] == T(0)) { gqr[a] = T(0); continue; }
            const T* row = KV + a * DV;
            T s = dden * S[a];
            for (int64_t e = 0; e < DV; ++e) s += gn[e] * row[e];
            gqr[a] = s;
            T* drow = dKV.data() + a * DV;
            for (int64_t e = 0; e < DV; ++e) drow[e] += qa[a] * gn[e];
            dS[a] += dden * qa[a];
          }
        }
        // Pass 2 (rows as keys/values): grad of k and v from dKV and ds.
        for (int64_t i = r0; i < r1; ++i) {
          const T* kr = k + (i * H + h) * D;
          const T* vr = v + (i * H + h) * DV;
          T* gkr = gk + (i * H + h) * D;
          T* gvr = gv + (i * H + h) * DV;
          std::fill(gvr, gvr + DV, T(0));
          for (int64_t a = 0; a < D; ++a) {
            if (kr[a] <= T(0)) { gkr[a] = T(0); continue; }
            const T* drow = dKV.data() + a * DV;
            T s = dS[a];
            for (int64_t e = 0; e < DV; ++e) {
              s += vr[e] * drow[e];
              gvr[e] += kr[a] * drow[e];
            }
            gkr[a] = s;
          }
        }
      }
    }
  });
}

std::tuple<Tensor, Tensor, Tensor> sla_forward_cpu(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                                   const Tensor& offsets_in, const Tensor& counts_in, double eps) {
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const Tensor offsets = offsets_in.contiguous(), counts = counts_in.contiguous();
  check_segments(q, k, v, offsets, counts);
  const int64_t N = q.size(0), H = q.size(1), D = q.size(2), DV = v.size(2), W = offsets.size(0);
  Tensor out = at::zeros({N, H, DV}, v.options());  // rows outside every window stay 0
  Tensor kv = at::empty({W, H, D, DV}, v.options());
  Tensor ks = at::empty({W, H, D}, v.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "scattered_linear_attention_cpu", [&] {
    sla_forward_kernel<scalar_t>(q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                                 offsets.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), W, H, D, DV, eps,
                                 out.data_ptr<scalar_t>(), kv.data_ptr<scalar_t>(), ks.data_ptr<scalar_t>());
  });
  return {out, kv, ks};
}

std::tuple<Tensor, Tensor, Tensor> sla_backward_cpu(const Tensor& grad_out, const std::optional<Tensor>& grad_kv,
                                                    const std::optional<Tensor>& grad_ksum, const Tensor& q_in,
                                                    const Tensor& k_in, const Tensor& v_in,
                                                    const Tensor& offsets_in, const Tensor& counts_in,
                                                    const Tensor& kv_in, const Tensor& ks_in, double eps) {
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const Tensor offsets = offsets_in.contiguous(), counts = counts_in.contiguous();
  check_segments(q, k, v, offsets, counts);
  const int64_t N = q.size(0), H = q.size(1), D = q.size(2), DV = v.size(2), W = offsets.size(0);
  const Tensor go = grad_out.contiguous(), kv = kv_in.contiguous(), ks = ks_in.contiguous();
  TORCH_CHECK(go.sizes() == v.sizes() && kv.dim() == 4 && kv.size(0) == W && ks.dim() == 3 && ks.size(0) == W,
              "scattered_linear_attention_backward: shape mismatch");
  Tensor gkv, gks;
  if (grad_kv.has_value() && grad_kv->defined()) {
    gkv = grad_kv->contiguous();
    TORCH_CHECK(gkv.sizes() == kv.sizes(), "scattered_linear_attention_backward: grad_kv shape");
  }
  if (grad_ksum.has_value() && grad_ksum->defined()) {
    gks = grad_ksum->contiguous();
    TORCH_CHECK(gks.sizes() == ks.sizes(), "scattered_linear_attention_backward: grad_ksum shape");
  }
  Tensor gq = at::zeros({N, H, D}, q.options()), gk = at::zeros({N, H, D}, q.options());
  Tensor gv = at::zeros({N, H, DV}, v.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "scattered_linear_attention_backward_cpu", [&] {
    sla_backward_kernel<scalar_t>(go.data_ptr<scalar_t>(), gkv.defined() ? gkv.data_ptr<scalar_t>() : nullptr,
                                  gks.defined() ? gks.data_ptr<scalar_t>() : nullptr, q.data_ptr<scalar_t>(),
                                  k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), offsets.data_ptr<int64_t>(),
                                  counts.data_ptr<int64_t>(), kv.data_ptr<scalar_t>(), ks.data_ptr<scalar_t>(), W,
                                  H, D, DV, eps, gq.data_ptr<scalar_t>(), gk.data_ptr<scalar_t>(),
                                  gv.data_ptr<scalar_t>());
  });
  return {gq, gk, gv};
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CPU, m) {
  m.impl("scattered_linear_attention", &sla_forward_cpu);
  m.impl("scattered_linear_attention_backward", &sla_backward_cpu);
}

}  // namespace partition
}  // namespace pc3d
