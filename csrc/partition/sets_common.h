// Pieces shared by the two CPU fast paths of the DSVT rotated sets (sets_bitmap_cpu.cpp and
// sets_counting_cpu.cpp): per-axis key tables, the windows and output buffers, and the slot fill of one
// window.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "partition/partition_cpu.h"
#include "partition/partition_keys.h"

namespace pc3d {
namespace partition {

// Per-axis key tables: tab[a][x] for axis a (0 = x, 1 = y, 2 = z) and every x in [0, sxyz[a]) is the
// cell's additive share of the window id (sample 0) and of both in-window keys, packed as one word
// window | (key0 | key1 << 16) << 32. A voxel's window and keys are the sum of its three words (no
// division per voxel; one load per axis). The halves add without carries while the window id stays below
// 2^32 and the keys below 2^16 (span <= 65536): both paths check that before they use the tables.
inline void axis_key_tables(const int64_t* sxyz, const WindowParams& p, std::vector<uint64_t> (&tab)[3]) {
  for (int a = 0; a < 3; ++a) {
    tab[a].resize(sxyz[a]);
    // q = (x + shift) / W and r = (x + shift) % W stepped along the axis.
    for (int64_t x = 0, q = p.sh[a] / p.W[a], r = p.sh[a] % p.W[a]; x < sxyz[a];
         ++x, r = (r + 1 == p.W[a]) ? 0 : r + 1, q += (r == 0)) {
      const int64_t zq = a == 2 ? q : 0, yq = a == 1 ? q : 0, xq = a == 0 ? q : 0;
      const int64_t zr = a == 2 ? r : 0, yr = a == 1 ? r : 0, xr = a == 0 ? r : 0;
      const uint64_t keys = uint64_t(inwindow_key_parts(zr, yr, xr, p, 0)) |
                            (uint64_t(inwindow_key_parts(zr, yr, xr, p, 1)) << 16);
      tab[a][x] = uint64_t(window_id_parts(0, zq, yq, xq, p)) | (keys << 32);
    }
  }
}

// A non-empty window in ascending (b, window) id: its first position in window-sorted order, voxel count
// and first set.
struct SetsWindow { int64_t id, start, n, set0; };

// The kernels' outputs for nsets sets of tau slots: indices (2, nsets, tau) int64, padding (2, nsets, tau)
// bool, set_window (nsets,) int64, with raw pointers and the size of one order's plane.
struct SetsBuffers {
  at::Tensor indices, padding, set_window;
  int64_t* idx;
  bool* pad;
  int64_t* sw;
  int64_t plane;
  SetsBuffers(int64_t nsets, int64_t tau, const at::TensorOptions& i64, const at::TensorOptions& b8)
      : indices(at::empty({2, nsets, tau}, i64)), padding(at::empty({2, nsets, tau}, b8)),
        set_window(at::empty({nsets}, i64)), idx(indices.data_ptr<int64_t>()), pad(padding.data_ptr<bool>()),
        sw(set_window.data_ptr<int64_t>()), plane(nsets * tau) {}
};

// First window of each of ch.T tasks of about V / T voxels each (cut[T] = number of windows), so that
// the slot fill runs window by window in parallel (each window writes its own sets).
inline std::vector<int64_t> window_task_cuts(const std::vector<SetsWindow>& wins, const Chunks& ch) {
  std::vector<int64_t> cut(ch.T + 1, int64_t(wins.size()));
  for (int64_t d = 0, w = 0; d < ch.T; ++d) {
    while (w < int64_t(wins.size()) && wins[w].start < ch.start[d]) ++w;
    cut[d] = w;
  }
  return cut;
}

// The S = ceil(n / tau) sets of one window, both orders: p0 / p1 (n) are the window's voxels in rank
// order of order 0 / 1. Writes idx[set0 * tau ...] (order 0) and idx[plane + ...] (order 1), the order-0
// mask pad[set0 * tau ...] (the mask depends on n only; the caller copies it to order 1) and the sets'
// window id sw[set0 ...].
inline void fill_window_sets(const int32_t* p0, const int32_t* p1, int64_t n, int64_t tau, int64_t set0, int64_t id,
                             int64_t plane, int64_t* idx, bool* pad, int64_t* sw) {
  const int64_t S = (n + tau - 1) / tau, D = S * tau, m0 = set0 * tau;
  int64_t* o0 = idx + m0;
  int64_t* o1 = idx + plane + m0;
  bool* pm = pad + m0;
  for (int64_t k = 0; k < S; ++k) sw[set0 + k] = id;
  if (n == D) {  // full sets: slot m holds rank m, nothing is padded
    for (int64_t m = 0; m < D; ++m) { o0[m] = p0[m]; o1[m] = p1[m]; }
    std::memset(pm, 0, size_t(D));
    return;
  }
  // Slot j of a set pads when j > 0 and its rank equals the rank of slot j - 1.
  if (D < 8192) {
    // rank(m) = floor(m n / D) by a fixed-point reciprocal, each slot on its own (the remainder
    // recurrence below chains every slot to the previous one; measured 161 vs 228 us for the slots of 75k
    // pillars). Exact: with magic = ceil(2^40 / D) and m n < D^2, the error m n (magic - 2^40 / D) / 2^40
    // stays below 1 / D while D^3 < 2^40.
    const uint64_t magic = ((uint64_t(1) << 40) + uint64_t(D) - 1) / uint64_t(D), un = uint64_t(n);
    for (int64_t k = 0; k < S; ++k) {
      const int64_t b = k * tau;
      uint64_t prev = (uint64_t(b) * un * magic) >> 40;
      o0[b] = p0[prev];
      o1[b] = p1[prev];
      pm[b] = false;
      for (int64_t j = 1; j < tau; ++j) {
        const uint64_t r = (uint64_t(b + j) * un * magic) >> 40;
        o0[b + j] = p0[r];
        o1[b + j] = p1[r];
        pm[b + j] = r == prev;
        prev = r;
      }
    }
    return;
  }
  // Larger windows: step the remainder by n (no division), the rank moves by 0 or 1.
  int64_t r = 0, rem = 0;
  for (int64_t k = 0; k < S; ++k, o0 += tau, o1 += tau, pm += tau) {
    o0[0] = p0[r];
    o1[0] = p1[r];
    pm[0] = false;
    rem += n;
    int64_t step = rem >= D;
    rem -= step * D;
    r += step;
    for (int64_t j = 1; j < tau; ++j) {
      o0[j] = p0[r];
      o1[j] = p1[r];
      pm[j] = !step;
      rem += n;
      step = rem >= D;
      rem -= step * D;
      r += step;
    }
  }
}

}  // namespace partition
}  // namespace pc3d
