// Counting path of the DSVT rotated sets on CPU: window ids and in-window keys are small dense
// integers, so each order is two stable counting passes (in-window key, then (b, window)) instead of a
// radix sort, and the slots are filled by fill_window_sets (sets_common.h). Large inputs run every pass
// over contiguous chunks, one per thread; the chunk histograms are prefixed bucket-major, chunk-minor, so
// the chunked scatters stay stable and the output is the same for every chunk count.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "partition/partition_cpu.h"
#include "partition/partition_keys.h"
#include "partition/sets_common.h"

namespace pc3d {
namespace partition {

bool sets_counting(const int32_t* c, int64_t V, at::IntArrayRef sxyz, const WindowParams& p, int64_t tau,
                   const at::TensorOptions& i64, const at::TensorOptions& b8, SetsOut& out) {
  const int64_t span = p.W[0] * p.W[1] * p.W[2], per_b = p.M[0] * p.M[1] * p.M[2];
  const int64_t cap = 4 * V + 65536;  // bucket arrays must stay small next to the voxels
  if (sxyz[0] + sxyz[1] + sxyz[2] > cap || span > std::min<int64_t>(cap, 65536) || per_b > cap ||
      V >= (int64_t(1) << 31))
    return false;
  std::vector<uint64_t> tab[3];  // packed window | keys words (sets_common.h); span <= 65536 checked above
  axis_key_tables(sxyz.data(), p, tab);
  // Bounds and the largest batch index first (check_coords_bmax: ValueError on a bad row; pass 1 indexes
  // the tables with the coords), then pass 1: window in the sample, both in-window keys packed
  // key0 | key1 << 16, histograms of the keys per chunk (h[chunk][order][key]). Buffers are uninitialised
  // on purpose: every entry is written before it is read.
  Chunks ch(V, counting_chunks(V));
  const int32_t bmax = check_coords_bmax(c, V, sxyz, ch);
  const int64_t nb = (int64_t(bmax) + 1) * per_b;
  if (nb > cap || nb >= (int64_t(1) << 32)) return false;
  std::unique_ptr<uint32_t[]> wbuf(new uint32_t[V]), kbuf(new uint32_t[V]);
  std::vector<int64_t> hist(ch.T * 2 * span, 0);
  ch.run([&](int64_t t, int64_t i0, int64_t i1) {
    // Raw local pointers: the compiler cannot prove that the stores below leave the containers alone,
    // so it would reload them.
    const int32_t* C4 = c;
    const uint64_t *TX = tab[0].data(), *TY = tab[1].data(), *TZ = tab[2].data();
    uint32_t *WB = wbuf.get(), *KB = kbuf.get();
    int64_t *H0 = hist.data() + t * 2 * span, *H1 = H0 + span;
    for (int64_t i = i0; i < i1; ++i) {
      const int32_t* r = C4 + 4 * i;
      const uint64_t s = TX[r[3]] + TY[r[2]] + TZ[r[1]];
      const uint32_t k = uint32_t(s >> 32);
      WB[i] = uint32_t(s);
      KB[i] = k;
      ++H0[k & 0xffffu];
      ++H1[k >> 16];
    }
  });
  if (ch.T * ch.T * nb > 2 * cap) {  // per-(chunk, chunk) window histograms too large: go serial
    for (int64_t t = 1; t < ch.T; ++t)
      for (int64_t k = 0; k < 2 * span; ++k) hist[k] += hist[t * 2 * span + k];
    ch = Chunks(V, 1);
  }
  const int64_t T = ch.T;
  // Pass 2: stable counting sort of both orders by in-window key; words carry (b * per_b + window,
  // voxel). The window histograms are kept per (order, source chunk, destination chunk of the written
  // position), so pass 3 can scatter its own chunk of the words without another counting read.
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t k = 0, run = 0; k < span; ++k)
      for (int64_t t = 0; t < T; ++t) {
        int64_t& h = hist[(t * 2 + o) * span + k];
        const int64_t n = h;
        h = run;
        run += n;
      }
  std::unique_ptr<uint64_t[]> tmp(new uint64_t[2 * V]);
  // Serial (T = 1): one window histogram, as the totals of both orders are the same.
  std::vector<int32_t> hw((T > 1 ? 2 * T * T : 1) * nb, 0);  // counts < V < 2^31; int32 halves the footprint
  const auto pass2 = [&](auto par, int64_t t, int64_t i0, int64_t i1) {
    constexpr bool PAR = decltype(par)::value;
    const uint32_t *WB = wbuf.get(), *KB = kbuf.get();
    uint64_t *T0 = tmp.get(), *T1 = T0 + V;
    int64_t *H0 = hist.data() + t * 2 * span, *H1 = H0 + span;
    int32_t *W0 = hw.data() + t * T * nb, *W1 = W0 + T * T * nb;
    const int32_t* C4 = c;
    const uint64_t pb = bmax ? uint64_t(per_b) : 0, M = ch.M;
    const int64_t NB = nb;
    for (int64_t i = i0; i < i1; ++i) {
      const uint64_t bw = uint64_t(C4[4 * i]) * pb + WB[i];
      const uint64_t w = (bw << 32) | uint64_t(i);
      const uint32_t k = KB[i];
      const int64_t a0 = H0[k & 0xffffu]++, a1 = H1[k >> 16]++;
      T0[a0] = w;
      T1[a1] = w;
      if (PAR) {
        ++W0[int64_t((uint64_t(a0) * M) >> 32) * NB + int64_t(bw)];  // ch.of(a0)
        ++W1[int64_t((uint64_t(a1) * M) >> 32) * NB + int64_t(bw)];
      } else {
        ++W0[bw];
      }
    }
  };
  ch.run([&](int64_t t, int64_t i0, int64_t i1) {
    if (T > 1) pass2(std::true_type(), t, i0, i1); else pass2(std::false_type(), t, i0, i1);
  });
  // Windows in ascending id (SetsWindow). off[order][chunk][window]: where destination chunk d of a
  // window starts (after the window's voxels of chunks < d).
  // Sum the source chunks into the t = 0 slices (contiguous runs): cnt_o[d * nb + w] counts window w
  // in destination chunk d of order o. Serial: one histogram serves both orders.
  for (int64_t o = 0; T > 1 && o < 2; ++o)
    for (int64_t t = 1; t < T; ++t)
      for (int64_t d = 0; d < T; ++d) {
        int32_t* dst = hw.data() + (o * T * T + d) * nb;
        const int32_t* src = hw.data() + ((o * T + t) * T + d) * nb;
        for (int64_t w = 0; w < nb; ++w) dst[w] += src[w];
      }
  const int32_t* cnt0 = hw.data();
  const int32_t* cnt1 = T > 1 ? cnt0 + T * T * nb : cnt0;
  std::vector<SetsWindow> wins;
  wins.reserve(size_t(std::min(nb, V)));
  std::vector<int64_t> off(2 * T * nb);
  int64_t pos = 0, nsets = 0;
  for (int64_t w = 0; w < nb; ++w) {
    int64_t n = 0, n1 = 0;
    for (int64_t d = 0; d < T; ++d) {
      off[d * nb + w] = pos + n;
      off[(T + d) * nb + w] = pos + n1;
      n += cnt0[d * nb + w];
      n1 += cnt1[d * nb + w];
    }
    if (n) {
      wins.push_back(SetsWindow{w, pos, n, nsets});
      nsets += (n + tau - 1) / tau;
      pos += n;
    }
  }
  // Pass 3: stable counting sort by window, per (order, chunk of words).
  std::unique_ptr<int32_t[]> perm(new int32_t[2 * V]);
  ch.tasks(2 * T, [&](int64_t j) {
    {
      const int64_t o = j / T, d = j % T;
      const uint64_t* src = tmp.get() + o * V;
      int32_t* P = perm.get() + o * V;
      int64_t* OFF = off.data() + (o * T + d) * nb;
      for (int64_t q = ch.start[d], q1 = ch.start[d + 1]; q < q1; ++q) {
        const uint64_t t = src[q];
        P[OFF[t >> 32]++] = int32_t(t & 0xffffffffu);
      }
    }
  });
  SetsBuffers ob(nsets, tau, i64, b8);
  int64_t *idx = ob.idx, *sw = ob.sw;
  bool* pad = ob.pad;
  const int64_t plane = ob.plane;
  const int32_t *P0 = perm.get(), *P1 = P0 + V;
  // Slots window by window (each window writes its own sets), in T tasks of about V / T voxels each.
  const std::vector<int64_t> wcut = window_task_cuts(wins, ch);
  ch.tasks(T, [&](int64_t d) {
    for (int64_t wi = wcut[d], w1 = wcut[d + 1]; wi < w1; ++wi) {
      const SetsWindow& w = wins[wi];
      fill_window_sets(P0 + w.start, P1 + w.start, w.n, tau, w.set0, w.id, plane, idx, pad, sw);
    }
  });
  std::memcpy(pad + plane, pad, size_t(plane));  // the mask depends on n only: the same for both orders
  out = SetsOut{ob.indices, ob.padding, ob.set_window};
  return true;
}

}  // namespace partition
}  // namespace pc3d
