// FlatFormer flattened-window partition on CPU: two counting passes on dense (b, window, in-window)
// ranks for usual grids, else snake keys and a stable radix sort on (b, key); every sample is cut into
// groups of exactly G. A sample's last group, when short, is filled either with the previous group's last
// voxels (FlatFormer's official rule, unmasked) or by repeating its own voxels (masked); see partition.cpp.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "partition/partition_keys.h"
#include "partition/partition_cpu.h"

namespace pc3d {
namespace partition {
namespace {

using at::Tensor;

// ---------------------------------------------------------------------------------------------------
// Counting path. The snake key orders voxels by window first (the in-window term is smaller than half
// the window stride of the key, so windows never interleave), so sorting on (b, window rank, in-window
// rank) with dense ranks gives exactly the order of the stable sort on (b, key):
//   rows u (y for key_x, x for key_y), columns v; window (u1, v1), in-window (u2, v2);
//   window rank    = u1 * NV + (u1 odd ? NV - 1 - v1 : v1)
//   in-window rank = ce or C - 1 - ce when u1 is odd, ce = v2 * wu + (v2 odd ? wu - 1 - u2 : u2).
// Two stable counting passes (in-window rank, then (b, window rank)) replace the radix sort, and the
// second pass writes the voxels straight into their group slots (the sample gaps left for padding are
// folded into the bucket offsets), so there is no separate permutation or fill pass.
// The packed rank (window rank << cbits) | in-window rank splits into a row part and a column part:
// packed = U[u].a[V[v].v2odd] + V[v].b[U[u].u1odd] (exact integer sum; the low field never carries).
struct UTab { int32_t a[2]; int32_t u1odd, pad_; };
struct VTab { int32_t b[2]; int32_t v2odd, pad_; };

// Pass 1 over voxels [i0, i1) (in bounds): packed ranks into RK, in-window rank histogram into HC. A
// plain function, not a lambda: with its own arguments the compiler keeps the loop's values in registers.
void flat_pass1(const int32_t* c, int64_t i0, int64_t i1, int ucol, int vcol, uint32_t cmask, const UTab* TU,
                const VTab* TV, uint32_t* RK, int64_t* HC) {
  for (int64_t i = i0; i < i1; ++i) {
    const int32_t* r = c + 4 * i;
    const UTab& a = TU[r[ucol]];
    const VTab& b = TV[r[vcol]];
    const uint32_t rk = uint32_t(a.a[b.v2odd] + b.b[a.u1odd]);
    RK[i] = rk;
    ++HC[rk & cmask];
  }
}

using FlatOut = std::tuple<Tensor, Tensor, Tensor, Tensor>;

bool flat_counting(const int32_t* c, int64_t V, at::IntArrayRef sxyz, const FlatParams& p, int64_t G,
                   bool fill_previous, const at::TensorOptions& i64, const at::TensorOptions& b8, FlatOut& out) {
  const bool ax_y = p.axis_y;
  const int64_t Su = ax_y ? sxyz[0] : sxyz[1], Sv = ax_y ? sxyz[1] : sxyz[0];
  const int64_t wu = ax_y ? p.wx : p.wy, wv = ax_y ? p.wy : p.wx;
  const int64_t shu = ax_y ? p.shx : p.shy, shv = ax_y ? p.shy : p.shx;
  const int64_t NU = (Su - 1 + shu) / wu + 1, NV = (Sv - 1 + shv) / wv + 1, NW = NU * NV, C = wu * wv;
  // Bucket arrays must stay small next to the voxels, else the radix path is cheaper.
  const int64_t cap = 4 * V + 65536;
  if (Su + Sv > cap || C > cap || NW > cap || V >= (int64_t(1) << 31)) return false;
  const int cbits = bit_length(uint64_t(C - 1));
  if ((uint64_t(NW) << cbits) >= (uint64_t(1) << 31)) return false;
  std::vector<UTab> tu(Su);
  std::vector<VTab> tv(Sv);
  // (c + shift) / w and % w stepped along each axis (no division per cell).
  for (int64_t u = 0, u1 = shu / wu, u2 = shu % wu; u < Su; ++u, u2 = (u2 + 1 == wu) ? 0 : u2 + 1, u1 += (u2 == 0)) {
    UTab& t = tu[u];
    t.u1odd = int32_t(u1 & 1);
    for (int p2 = 0; p2 < 2; ++p2) {  // p2: parity of v2, which picks the direction of u2
      const int64_t tt = p2 ? wu - 1 - u2 : u2;
      t.a[p2] = int32_t(t.u1odd ? ((u1 * NV + NV - 1) << cbits) + C - 1 - tt : ((u1 * NV) << cbits) + tt);
    }
  }
  for (int64_t v = 0, v1 = shv / wv, v2 = shv % wv; v < Sv; ++v, v2 = (v2 + 1 == wv) ? 0 : v2 + 1, v1 += (v2 == 0)) {
    VTab& t = tv[v];
    t.v2odd = int32_t(v2 & 1);
    t.b[0] = int32_t((v1 << cbits) + v2 * wu);  // row u1 even
    t.b[1] = -t.b[0];                            // row u1 odd: both fields run backwards
  }
  const int ucol = ax_y ? 3 : 2, vcol = ax_y ? 2 : 3;  // coords columns (b, z, y, x)
  // Bounds and the largest batch index first (ValueError on a bad row; pass 1 indexes the tables with
  // the coords), then pass 1: dense ranks packed as (window rank << cbits) | in-window rank, histograms
  // of the in-window rank per chunk. Buffers are left uninitialised: every entry is written before it
  // is read. Every pass runs over contiguous chunks (one per thread for large inputs); the chunk
  // histograms are prefixed bucket-major, chunk-minor, so the chunked scatters stay stable and equal
  // the serial ones.
  Chunks ch(V, counting_chunks(V));
  const int32_t bmax = check_coords_bmax(c, V, sxyz, ch);
  const int64_t nb = (int64_t(bmax) + 1) * NW;
  if (nb > cap || nb >= (int64_t(1) << 32)) return false;
  const uint32_t cmask = (uint32_t(1) << cbits) - 1;
  std::unique_ptr<uint32_t[]> rank(new uint32_t[V]);
  std::vector<int64_t> hc(ch.T * C, 0);
  ch.run([&](int64_t t, int64_t i0, int64_t i1) {
    flat_pass1(c, i0, i1, ucol, vcol, cmask, tu.data(), tv.data(), rank.get(), hc.data() + t * C);
  });
  if (ch.T * ch.T * nb > 2 * cap) {  // per-(chunk, chunk) window histograms too large: go serial
    for (int64_t t = 1; t < ch.T; ++t)
      for (int64_t k = 0; k < C; ++k) hc[k] += hc[t * C + k];
    ch = Chunks(V, 1);
  }
  const int64_t T = ch.T;
  // Pass 2: stable counting sort by in-window rank; words carry (b * NW + window rank, voxel). The
  // (b, window) histogram is kept per (source chunk, destination chunk of the written position), so
  // pass 3 can scatter its own chunk of the words without another counting read.
  for (int64_t k = 0, run = 0; k < C; ++k)
    for (int64_t t = 0; t < T; ++t) { const int64_t n = hc[t * C + k]; hc[t * C + k] = run; run += n; }
  std::unique_ptr<uint64_t[]> tmp(new uint64_t[V]);
  std::vector<int32_t> hw(T * T * nb, 0);  // counts < V < 2^31; int32 halves the cache footprint
  const auto pass2 = [&](auto par, int64_t t, int64_t i0, int64_t i1) {
    constexpr bool PAR = decltype(par)::value;
    const uint32_t* RK = rank.get();
    uint64_t* TMP = tmp.get();
    int64_t* HC = hc.data() + t * C;
    int32_t* HW = hw.data() + t * T * nb;
    const int32_t* C4 = c;
    const uint64_t nw = bmax ? uint64_t(NW) : 0, M = ch.M;
    const int64_t NB = nb;
    const int cb = cbits;
    const uint32_t CM = cmask;
    for (int64_t i = i0; i < i1; ++i) {
      const uint32_t rk = RK[i];
      const uint64_t bw = uint64_t(C4[4 * i]) * nw + (rk >> cb);
      const int64_t at = HC[rk & CM]++;
      TMP[at] = (bw << 32) | uint64_t(i);
      if (PAR) {
        ++HW[int64_t((uint64_t(at) * M) >> 32) * NB + int64_t(bw)];  // ch.of(at)
      } else {
        ++HW[bw];
      }
    }
  };
  ch.run([&](int64_t t, int64_t i0, int64_t i1) {
    if (T > 1) pass2(std::true_type(), t, i0, i1); else pass2(std::false_type(), t, i0, i1);
  });
  // Slot offsets per (b, window): samples laid out one after the other, each padded to a multiple of G;
  // within a window, destination chunk d starts after the voxels of chunks < d.
  struct Sample { int64_t b, slot0, n; };
  std::vector<Sample> samples;
  std::vector<int64_t> off(T * nb);
  int64_t pos = 0;
  for (int64_t b = 0; b <= bmax; ++b) {
    const int64_t s0 = pos;
    for (int64_t w = b * NW; w < (b + 1) * NW; ++w) {
      for (int64_t d = 0; d < T; ++d) {
        int64_t n = 0;
        for (int64_t t = 0; t < T; ++t) n += hw[(t * T + d) * nb + w];
        off[d * nb + w] = pos;
        pos += n;
      }
    }
    if (pos > s0) {
      samples.push_back(Sample{b, s0, pos - s0});
      pos = s0 + (pos - s0 + G - 1) / G * G;
    }
  }
  const int64_t groups = pos / G;
  Tensor indices = at::empty({groups, G}, i64), inverse = at::empty({V}, i64);
  Tensor group_batch = at::empty({groups}, i64), padding = at::empty({groups, G}, b8);
  int64_t* idx = indices.data_ptr<int64_t>();
  int64_t* inv = inverse.data_ptr<int64_t>();
  int64_t* gb = group_batch.data_ptr<int64_t>();
  bool* pad = padding.data_ptr<bool>();
  // Pass 3: stable counting sort by (b, window rank) straight into the slots, chunk by chunk of words.
  ch.run([&](int64_t d, int64_t p0, int64_t p1) {
    const uint64_t* TMP = tmp.get();
    int64_t* OFF = off.data() + d * nb;
    int64_t *IDX = idx, *INV = inv;
    for (int64_t p = p0; p < p1; ++p) {
      const uint64_t t = TMP[p];
      const int64_t s = OFF[t >> 32]++;
      const int64_t v = int64_t(t & 0xffffffffu);
      IDX[s] = v;
      INV[v] = s;
    }
  });
  // Last group of each sample: slot j >= real takes slot j of the previous group (unmasked), or repeats
  // slot j % real (masked) in the repeat mode and when the sample has one group only; sample per group.
  std::memset(pad, 0, size_t(groups * G));
  for (const Sample& sm : samples) {
    const int64_t ng = (sm.n + G - 1) / G, g_last = sm.slot0 / G + ng - 1;
    const int64_t real = sm.n - (ng - 1) * G;
    int64_t* row = idx + g_last * G;
    if (real < G && fill_previous && ng > 1) {
      std::memcpy(row + real, row + real - G, size_t(G - real) * sizeof(int64_t));
    } else if (real < G) {
      for (int64_t j = real; j < G; ++j) row[j] = row[j % real];
      std::memset(pad + g_last * G + real, 1, size_t(G - real));
    }
    std::fill(gb + sm.slot0 / G, gb + g_last + 1, sm.b);
  }
  out = FlatOut{indices, inverse, group_batch, padding};
  return true;
}


std::tuple<Tensor, Tensor, Tensor, Tensor> flat_window_partition_cpu(const Tensor& coords_in,
                                                                     at::IntArrayRef sparse_xyz,
                                                                     at::IntArrayRef window_xy,
                                                                     int64_t G, int64_t axis, bool shift,
                                                                     int64_t last_group) {
  TORCH_CHECK(coords_in.dim() == 2 && coords_in.size(1) == 4 && coords_in.scalar_type() == at::kInt,
              "flat_window_partition: coords must be (V, 4) int32");
  TORCH_CHECK(sparse_xyz.size() == 3 && window_xy.size() == 2 && G > 0 && (axis == 0 || axis == 1),
              "flat_window_partition: bad sparse_shape/window_shape/group_size/axis");
  TORCH_CHECK(window_xy[0] > 0 && window_xy[1] > 0 && sparse_xyz[0] > 0 && sparse_xyz[1] > 0 && sparse_xyz[2] > 0,
              "flat_window_partition: shapes must be positive");
  TORCH_CHECK_VALUE(last_group == kFlatFillPrevious || last_group == kFlatFillRepeat,
                    "flat_window_partition: last_group must be ", kFlatFillPrevious, " (previous) or ",
                    kFlatFillRepeat, " (repeat), got ", last_group);
  const bool fill_previous = last_group == kFlatFillPrevious;
  const Tensor coords = coords_in.contiguous();
  const int64_t V = coords.size(0);
  const auto i64 = coords.options().dtype(at::kLong);
  if (V == 0) {
    return {at::empty({0, G}, i64), at::empty({0}, i64), at::empty({0}, i64),
            at::empty({0, G}, coords.options().dtype(at::kBool))};
  }
  const FlatParams p = make_flat_params(sparse_xyz[0], sparse_xyz[1], window_xy[0], window_xy[1], axis == 1, shift);

  const int32_t* c = coords.data_ptr<int32_t>();
  FlatOut fast;
  if (flat_counting(c, V, sparse_xyz, p, G, fill_previous, i64, coords.options().dtype(at::kBool), fast)) return fast;
  // Radix path (huge grids, windows or batch indices). Division tables for grids of usual size; huge grids fall back to dividing per voxel.
  const bool tab = sparse_xyz[0] <= (1 << 22) && sparse_xyz[1] <= (1 << 22);
  const DivTable tx(tab ? sparse_xyz[0] : 0, p.shx, p.wx), ty(tab ? sparse_xyz[1] : 0, p.shy, p.wy);
  std::vector<uint64_t> key(V);
  // Pass 1: in-sample key and the maxima that size the composite (b, key) sort key.
  struct Max { int64_t key, b; };
  const Max mx = at::parallel_reduce(
      0, V, kSerialBelow, Max{0, 0},
      [&](int64_t s, int64_t e, Max m) {
        for (int64_t i = s; i < e; ++i) {
          const int32_t* r = c + 4 * i;
          check_voxel(r, i, sparse_xyz[0], sparse_xyz[1], sparse_xyz[2]);
          const int64_t k = tab ? flat_key_parts(tx.q[r[3]], ty.q[r[2]], tx.r[r[3]], ty.r[r[2]], p)
                                : flat_key(r[3], r[2], p);
          key[i] = uint64_t(k);
          m.key = std::max(m.key, k);
          m.b = std::max<int64_t>(m.b, r[0]);
        }
        return m;
      },
      [](Max a, Max b) { return Max{std::max(a.key, b.key), std::max(a.b, b.b)}; });
  const uint64_t K = uint64_t(mx.key) + 1;
  TORCH_CHECK_VALUE(uint64_t(mx.b) + 1 < (uint64_t(1) << 62) / K,
                    "flat_window_partition: batch index ", mx.b, " overflows the 64-bit sort key");
  if (mx.b > 0) {
    at::parallel_for(0, V, kSerialBelow, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) key[i] += uint64_t(c[4 * i]) * K;
    });
  }
  std::vector<int64_t> perm(V);
  std::vector<uint64_t> sorted(V);
  radix_argsort(key.data(), V, bit_length(uint64_t(mx.b) * K + K - 1), perm.data(), sorted.data());

  // Samples are runs of equal b in the sorted keys (a binary search per sample, no per-b arrays).
  std::vector<int64_t> s_start, s_len, s_b, s_group0;
  int64_t groups = 0;
  for (int64_t pos = 0; pos < V;) {
    const uint64_t b = sorted[pos] / K;
    const int64_t end = std::lower_bound(sorted.begin() + pos, sorted.end(), (b + 1) * K) - sorted.begin();
    s_start.push_back(pos);
    s_len.push_back(end - pos);
    s_b.push_back(int64_t(b));
    s_group0.push_back(groups);
    groups += (end - pos + G - 1) / G;
    pos = end;
  }
  s_group0.push_back(groups);

  Tensor indices = at::empty({groups, G}, i64);
  Tensor inverse = at::empty({V}, i64);
  Tensor group_batch = at::empty({groups}, i64);
  Tensor padding = at::empty({groups, G}, coords.options().dtype(at::kBool));
  int64_t* idx = indices.data_ptr<int64_t>();
  int64_t* inv = inverse.data_ptr<int64_t>();
  int64_t* gb = group_batch.data_ptr<int64_t>();
  bool* pad = padding.data_ptr<bool>();
  const int64_t nsamples = int64_t(s_start.size());
  at::parallel_for(0, groups, std::max<int64_t>(1, kSerialBelow / G), [&](int64_t g0, int64_t g1) {
    int64_t s = std::upper_bound(s_group0.begin(), s_group0.end(), g0) - s_group0.begin() - 1;
    for (int64_t g = g0; g < g1; ++g) {
      while (s + 1 < nsamples && g >= s_group0[s + 1]) ++s;
      const int64_t t = g - s_group0[s];
      const int64_t p0 = s_start[s] + t * G;
      const int64_t real = std::min(G, s_len[s] - t * G);  // >= 1 by construction
      // Filling a short last group: slot j takes slot j of the previous group (t >= 1, unmasked), or
      // cycles over this group's real voxels (slot j repeats slot j % real, masked).
      const bool prev = fill_previous && t > 0;
      gb[g] = s_b[s];
      for (int64_t j = 0; j < G; ++j) {
        const int64_t v = perm[j < real ? p0 + j : (prev ? p0 - G + j : p0 + j % real)];
        idx[g * G + j] = v;
        pad[g * G + j] = j >= real && !prev;
        if (j < real) inv[v] = g * G + j;
      }
    }
  });
  return {indices, inverse, group_batch, padding};
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CPU, m) { m.impl("flat_window_partition", &flat_window_partition_cpu); }

}  // namespace partition
}  // namespace pc3d
