// Bitmap path of the DSVT rotated sets on CPU, tried before the counting path (sets_counting_cpu.cpp).
//
// Voxels are unique cells, so inside a window each in-window key names at most one voxel: ordering a
// window by a key is walking the key's occupied values in ascending order. So the voxels are moved once,
// by a stable counting sort on (b, window); then each window, small enough for L1 (span <= 4096 cells),
// writes its voxel indices into a cell table indexed by key0, sets its key0 and key1 bits in two
// occupancy bitmaps, and reads both orders off the set bits (key1 mapped back to its key0 cell). The
// counting path instead spends two stable scatters of all voxels on the in-window keys.
//
// Duplicate coordinates break the one-voxel-per-cell premise (the definitions then order the duplicates
// by input index): the window pass detects them and the caller falls back to the counting path.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "partition/partition_cpu.h"
#include "partition/partition_keys.h"
#include "partition/sets_common.h"

namespace pc3d {
namespace partition {

namespace {

// Pass 1 over voxels [i0, i1): WB[i] = (b, window) = b * PB + window, KB[i] = key0 | key1 << 16, ++H[WB[i]].
// tabs: the packed per-axis words (x, y, z). Each row is read as two 8-byte words (b | z << 32, y | x << 32,
// little-endian) and Z = false (a grid one cell high: z is 0 after the bounds check) adds the z share of
// cell 0 from a register instead of the table: the pass is load-bound (75k pillars, one thread: 151 us
// with four int32 loads and the z table, 99 us without either).
template <bool Z>
void keys_pass(const int32_t* c, int64_t i0, int64_t i1, const uint64_t* const* tabs, uint32_t PB, uint32_t* WB,
               uint32_t* KB, int32_t* H) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "keys_pass reads (b, z) and (y, x) as 8-byte words");
  const uint64_t *TX = tabs[0], *TY = tabs[1], *TZ = tabs[2], z0 = TZ[0];
  for (int64_t i = i0; i < i1; ++i) {
    uint64_t bz, yx;
    std::memcpy(&bz, c + 4 * i, 8);
    std::memcpy(&yx, c + 4 * i + 2, 8);
    const uint64_t s = TX[yx >> 32] + TY[uint32_t(yx)] + (Z ? TZ[bz >> 32] : z0);
    const uint32_t w = uint32_t(bz) * PB + uint32_t(s);  // < nb < 2^32
    WB[i] = w;
    KB[i] = uint32_t(s >> 32);
    ++H[w];
  }
}

}  // namespace

bool sets_bitmap(const int32_t* c, int64_t V, at::IntArrayRef sxyz, const WindowParams& p, int64_t tau,
                 const at::TensorOptions& i64, const at::TensorOptions& b8, SetsOut& out) {
  const int64_t span = p.W[0] * p.W[1] * p.W[2], per_b = p.M[0] * p.M[1] * p.M[2];
  const int64_t words = (span + 63) / 64;  // 64-bit words per occupancy bitmap
  const int64_t cap = 4 * V + 65536;       // the window histograms must stay small next to the voxels
  if (span > 4096 || sxyz[0] + sxyz[1] + sxyz[2] > cap || per_b > cap || V >= (int64_t(1) << 31)) return false;
  // Packed words (pass 1 is load-bound: one word per axis measured 154 vs 219 us on 75k pillars against
  // separate window / key0 / key1 loads).
  std::vector<uint64_t> packed[3];
  axis_key_tables(sxyz.data(), p, packed);
  Chunks ch(V, counting_chunks(V));
  const int32_t bmax = check_coords_bmax(c, V, sxyz, ch);  // ValueError on a bad row; pass 1 indexes tables
  const int64_t nb = (int64_t(bmax) + 1) * per_b;
  if (ch.T * nb > cap || nb >= (int64_t(1) << 32)) return false;
  const int64_t T = ch.T;
  // Pass 1: (b, window) and both in-window keys per voxel (key0 | key1 << 16), histogram of windows per
  // chunk. Buffers are uninitialised on purpose: every entry is written before it is read.
  std::unique_ptr<uint32_t[]> wbuf(new uint32_t[V]), kbuf(new uint32_t[V]);
  std::vector<int32_t> hist(T * nb, 0);  // counts < V < 2^31
  ch.run([&](int64_t t, int64_t i0, int64_t i1) {
    const uint64_t* tabs[3] = {packed[0].data(), packed[1].data(), packed[2].data()};
    int32_t* H = hist.data() + t * nb;
    if (sxyz[2] == 1)  // pillars
      keys_pass<false>(c, i0, i1, tabs, uint32_t(per_b), wbuf.get(), kbuf.get(), H);
    else
      keys_pass<true>(c, i0, i1, tabs, uint32_t(per_b), wbuf.get(), kbuf.get(), H);
  });
  // Windows in ascending id: first sorted position, voxel count, first set. Then the histograms become
  // each chunk's write positions (window-major, chunk-minor: the scatter is stable for any chunk count).
  std::vector<SetsWindow> wins;
  wins.reserve(size_t(std::min(nb, V)));
  int64_t pos = 0, nsets = 0;
  for (int64_t w = 0; w < nb; ++w) {
    int64_t n = 0;
    for (int64_t t = 0; t < T; ++t) {
      int32_t& h = hist[t * nb + w];
      const int32_t k = h;
      h = int32_t(pos + n);
      n += k;
    }
    if (n) {
      wins.push_back(SetsWindow{w, pos, n, nsets});
      nsets += (n + tau - 1) / tau;
      pos += n;
    }
  }
  // Pass 2: scatter (voxel << 32 | keys) by window.
  std::unique_ptr<uint64_t[]> sorted(new uint64_t[V]);
  ch.run([&](int64_t t, int64_t i0, int64_t i1) {
    const uint32_t *WB = wbuf.get(), *KB = kbuf.get();
    int32_t* H = hist.data() + t * nb;
    uint64_t* S = sorted.get();
    for (int64_t i = i0; i < i1; ++i) S[H[WB[i]]++] = (uint64_t(i) << 32) | KB[i];
  });
  // key1 -> key0 of the same cell, to read order 1's voxels from the key0-indexed cell table.
  std::vector<int32_t> k1_to_k0(span);
  for (int64_t iz = 0; iz < p.W[2]; ++iz)
    for (int64_t iy = 0; iy < p.W[1]; ++iy)
      for (int64_t ix = 0; ix < p.W[0]; ++ix)
        k1_to_k0[inwindow_key_parts(iz, iy, ix, p, 1)] = int32_t(inwindow_key_parts(iz, iy, ix, p, 0));
  SetsBuffers ob(nsets, tau, i64, b8);
  int64_t *idx = ob.idx, *sw = ob.sw;
  bool* pad = ob.pad;
  const int64_t plane = ob.plane;
  // Pass 3, window by window (each window writes its own sets), in T tasks of about V / T voxels each.
  const std::vector<int64_t> wcut = window_task_cuts(wins, ch);
  std::vector<uint8_t> dup_t(T, 0);
  ch.tasks(T, [&](int64_t d) {
    // Per task: the cell table (only occupied cells are read, so it is never cleared), both bitmaps
    // (cleared while they are walked) and the window's voxels in either order.
    std::vector<int32_t> cell(span), p0(span), p1(span);
    std::vector<uint64_t> bm(2 * words, 0);
    const int32_t* K10 = k1_to_k0.data();
    const uint64_t* S = sorted.get();
    int32_t* C = cell.data();
    uint64_t *B0 = bm.data(), *B1 = B0 + words;
    const int64_t WORDS = words;
    uint64_t dup = 0;
    for (int64_t wi = wcut[d], w1 = wcut[d + 1]; wi < w1 && !dup; ++wi) {
      const SetsWindow& w = wins[wi];
      for (int64_t q = w.start, q1 = w.start + w.n; q < q1; ++q) {
        const uint64_t u = S[q];
        const uint32_t k0 = uint32_t(u) & 0xffffu, k1 = uint32_t(u) >> 16;
        C[k0] = int32_t(u >> 32);
        const uint64_t m0 = uint64_t(1) << (k0 & 63);
        dup |= B0[k0 >> 6] & m0;
        B0[k0 >> 6] |= m0;
        B1[k1 >> 6] |= uint64_t(1) << (k1 & 63);
      }
      int32_t *a = p0.data(), *b = p1.data();
      for (int64_t q = 0; q < WORDS; ++q) {
        for (uint64_t m = B0[q]; m; m &= m - 1) *a++ = C[q * 64 + __builtin_ctzll(m)];
        for (uint64_t m = B1[q]; m; m &= m - 1) *b++ = C[K10[q * 64 + __builtin_ctzll(m)]];
        B0[q] = B1[q] = 0;
      }
      if (!dup) fill_window_sets(p0.data(), p1.data(), w.n, tau, w.set0, w.id, plane, idx, pad, sw);
    }
    dup_t[d] = dup != 0;
  });
  if (*std::max_element(dup_t.begin(), dup_t.end())) return false;
  std::memcpy(pad + plane, pad, size_t(plane));  // the mask depends on n only: the same for both orders
  out = SetsOut{ob.indices, ob.padding, ob.set_window};
  return true;
}

}  // namespace partition
}  // namespace pc3d
