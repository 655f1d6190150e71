// CPU helpers of the partition kernels: bounds check, division tables and a stable LSD radix argsort
// for non-negative integer keys.
// Stable means equal keys keep their input order, which the partitions' definitions rely on.
#pragma once
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <tuple>
#include <vector>

#include "partition/partition_keys.h"

namespace pc3d {
namespace partition {

// (c + shift) / w and (c + shift) % w for every c in [0, extent): integer division is the slowest
// part of computing keys per voxel, while the extents are small (a few hundred cells per axis).
struct DivTable {
  std::vector<int32_t> q, r;
  DivTable(int64_t extent, int64_t shift, int64_t w) : q(extent), r(extent) {
    for (int64_t c = 0; c < extent; ++c) {
      q[c] = int32_t((c + shift) / w);
      r[c] = int32_t((c + shift) % w);
    }
  }
};

// Raises ValueError (TORCH_CHECK_VALUE) for a voxel outside the grid, so kernels never index out of
// bounds and the Python face needs no separate pass over coords.
inline void check_voxel(const int32_t* r, int64_t i, int64_t sx, int64_t sy, int64_t sz) {
  TORCH_CHECK_VALUE(r[0] >= 0 && r[1] >= 0 && r[2] >= 0 && r[3] >= 0 && r[3] < sx && r[2] < sy && r[1] < sz,
                    "coords row ", i, " (b, z, y, x) = (", r[0], ", ", r[1], ", ", r[2], ", ", r[3],
                    ") is outside sparse_shape (D, H, W) = (", sz, ", ", sy, ", ", sx,
                    ") or has a negative batch index");
}

// Element counts below which the partition kernels stay on one thread: a frame of up to ~200k voxels
// takes ~1 ms serially, and on a shared (oversubscribed) CPU every parallel region can stall for far
// longer than that waiting for a descheduled worker.
constexpr int64_t kSerialBelow = 262144;

// Counting paths: voxels per chunk below which a chunk is not worth a thread. A 128-beam scan gives ~11k
// pillars: two chunks of it took DSVT's sets from 0.18 to 0.14 ms and FlatFormer's four partitions from
// 0.34 to 0.31 ms (2 threads, idle machine), the 4-5 parallel regions costing far less than the halved
// passes. On an oversubscribed CPU every region can stall for a scheduler slice, as for any parallel
// torch op.
constexpr int64_t kCountingChunkMin = 4096;

// Number of contiguous chunks the counting paths split V voxels into: 1 (serial) for small inputs, else
// one per thread. PC3D_PARTITION_CHUNKS=k forces k chunks (tests use it to run the chunked code on small
// inputs; the result is the same for every chunk count, only the speed differs).
inline int64_t counting_chunks(int64_t V) {
  if (const char* s = std::getenv("PC3D_PARTITION_CHUNKS")) {
    const long k = std::strtol(s, nullptr, 10);
    if (k >= 1) return std::min<int64_t>(k, std::max<int64_t>(V, 1));
  }
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), V / kCountingChunkMin));
}

// [0, n) cut into T contiguous chunks by a monotone map, so a position's chunk is one multiply and shift
// (the parallel counting passes look it up per element): chunk(pos) = (pos * M) >> 32, M = 2^32 T / n.
struct Chunks {
  int64_t T;
  uint64_t M;
  std::vector<int64_t> start;  // T + 1 boundaries: chunk c is [start[c], start[c + 1]), maybe empty
  Chunks(int64_t n, int64_t chunks) : T(chunks), M(chunks > 1 ? (uint64_t(chunks) << 32) / uint64_t(n) : 0),
                                      start(chunks + 1) {
    // chunk(n - 1) <= floor((n - 1) T / n) < T, and chunk() never decreases: binary search the boundaries.
    for (int64_t c = 0; c <= T; ++c) {
      int64_t lo = 0, hi = n;  // first pos with chunk(pos) >= c
      while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (of(mid) >= c) hi = mid; else lo = mid + 1;
      }
      start[c] = lo;
    }
    start[T] = n;
  }
  int64_t of(int64_t pos) const { return int64_t((uint64_t(pos) * M) >> 32); }
  // Runs fn(c, begin, end) for every chunk, one chunk per task.
  template <typename F>
  void run(const F& fn) const {
    tasks(T, [&](int64_t c) { fn(c, start[c], start[c + 1]); });
  }
  // Runs fn(j) for j in [0, n): in parallel when there are several chunks, else in a plain loop (the
  // serial path of at::parallel_for measurably slows the loops it runs).
  template <typename F>
  void tasks(int64_t n, const F& fn) const {
    if (T == 1) {
      for (int64_t j = 0; j < n; ++j) fn(j);
      return;
    }
    at::parallel_for(0, n, 1, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) fn(j);
    });
  }
};

// Bounds check of every voxel (ValueError naming the first bad row) and the largest batch index, in one
// chunked read of coords. A pass of its own, not folded into the kernels' first counting pass: with the
// early exit and the extra live values there, that loop ran 3x slower than the two loops apart (measured,
// 75k pillars: 436 us fused vs 20 + 145 us).
inline int32_t check_coords_bmax(const int32_t* c, int64_t V, at::IntArrayRef sxyz, const Chunks& ch) {
  // Extents above 2^31 exceed every int32 coordinate; clamp so the uint32 casts cannot wrap.
  const auto clamp32 = [](int64_t e) { return uint32_t(std::min<int64_t>(e, int64_t(1) << 31)); };
  const uint32_t ux = clamp32(sxyz[0]), uy = clamp32(sxyz[1]), uz = clamp32(sxyz[2]);
  std::vector<uint32_t> bad_t(ch.T, 0);
  std::vector<int32_t> bmax_t(ch.T, 0);
  ch.run([&](int64_t t, int64_t i0, int64_t i1) {
    const int32_t* C4 = c;
    const uint32_t X = ux, Y = uy, Z = uz;
    uint32_t bad = 0, bor = 0;
    int32_t bmax = 0;
    for (int64_t i = i0; i < i1; ++i) {  // branch-free: unsigned compares also catch negatives
      const int32_t* r = C4 + 4 * i;
      bad |= uint32_t(uint32_t(r[3]) >= X) | uint32_t(uint32_t(r[2]) >= Y) | uint32_t(uint32_t(r[1]) >= Z);
      bor |= uint32_t(r[0]);
      bmax = r[0] > bmax ? r[0] : bmax;
    }
    bad_t[t] = bad | (bor >> 31);
    bmax_t[t] = bmax;
  });
  if (*std::max_element(bad_t.begin(), bad_t.end())) {  // look the row up only on failure
    for (int64_t i = 0; i < V; ++i) check_voxel(c + 4 * i, i, sxyz[0], sxyz[1], sxyz[2]);
  }
  return *std::max_element(bmax_t.begin(), bmax_t.end());
}

inline int bit_length(uint64_t v) {
  int b = 0;
  while (v) { ++b; v >>= 1; }
  return b;
}

// Serial path: each key is packed with its index ((key << idx_bits) | i) so a pass moves one word,
// and the histograms of every pass are built in one read (they do not depend on the order).
inline void packed_radix_argsort(const uint64_t* keys, int64_t n, int passes, int width, int idx_bits,
                                 int64_t* perm, uint64_t* sorted) {
  const int64_t radix = int64_t(1) << width;
  const uint64_t mask = uint64_t(radix - 1), imask = (uint64_t(1) << idx_bits) - 1;
  std::vector<uint64_t> a(n), b(n);
  std::vector<int64_t> hist(passes * radix, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t k = keys[i];
    a[i] = (k << idx_bits) | uint64_t(i);
    for (int p = 0; p < passes; ++p) ++hist[p * radix + ((k >> (p * width)) & mask)];
  }
  uint64_t* src = a.data();
  uint64_t* dst = b.data();
  for (int p = 0; p < passes; ++p) {
    int64_t* h = hist.data() + p * radix;
    int64_t running = 0;
    bool trivial = false;
    for (int64_t d = 0; d < radix; ++d) {
      const int64_t t = h[d];
      trivial |= (t == n);
      h[d] = running;
      running += t;
    }
    if (trivial) continue;  // every key has the same digit here: the pass would not move anything
    const int shift = idx_bits + p * width;
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t x = src[i];
      dst[h[(x >> shift) & mask]++] = x;
    }
    std::swap(src, dst);
  }
  for (int64_t i = 0; i < n; ++i) perm[i] = int64_t(src[i] & imask);
  if (sorted) for (int64_t i = 0; i < n; ++i) sorted[i] = src[i] >> idx_bits;
}

// perm[i] = input index of the i-th smallest key (ties by input index); sorted[i] = that key when
// sorted is not null. Every key must be < 2^bits.
inline void radix_argsort(const uint64_t* keys, int64_t n, int bits, int64_t* perm, uint64_t* sorted) {
  if (n <= 0) return;
  if (n < 512 || bits == 0) {  // small inputs: a comparison sort beats building histograms
    for (int64_t i = 0; i < n; ++i) perm[i] = i;
    if (bits > 0) std::stable_sort(perm, perm + n, [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
    if (sorted) for (int64_t i = 0; i < n; ++i) sorted[i] = keys[perm[i]];
    return;
  }
  const int passes = (bits + 10) / 11;
  const int width = (bits + passes - 1) / passes;  // balanced digit width, <= 11 bits
  const int64_t radix = int64_t(1) << width;
  const int idx_bits = bit_length(uint64_t(n - 1));
  if (bits + idx_bits <= 64 && n < kSerialBelow) {
    packed_radix_argsort(keys, n, passes, width, idx_bits, perm, sorted);
    return;
  }
  const uint64_t mask = uint64_t(radix - 1);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n / (kSerialBelow / 2)));
  const int64_t chunk_len = (n + chunks - 1) / chunks;
  std::vector<int64_t> hist(chunks * radix);
  std::vector<uint64_t> kbuf_a(n), kbuf_b(n);
  std::vector<int64_t> ibuf(n);
  const uint64_t* kin = keys;
  const int64_t* iin = nullptr;  // nullptr = identity (first pass)
  // Ping-pong between perm and ibuf; a copy at the end puts the result into perm.
  int64_t* idx_bufs[2] = {perm, ibuf.data()};
  uint64_t* key_bufs[2] = {kbuf_a.data(), kbuf_b.data()};
  int out_sel = 0;
  int done = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const int shift = pass * width;
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        int64_t* h = hist.data() + c * radix;
        std::fill(h, h + radix, 0);
        const int64_t e = std::min(n, (c + 1) * chunk_len);
        for (int64_t i = c * chunk_len; i < e; ++i) ++h[(kin[i] >> shift) & mask];
      }
    });
    int64_t running = 0;
    bool trivial = false;
    for (int64_t d = 0; d < radix; ++d) {
      int64_t total = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t t = hist[c * radix + d];
        hist[c * radix + d] = running;
        running += t;
        total += t;
      }
      if (total == n) trivial = true;  // every key has this digit: the pass would not move anything
    }
    if (trivial && pass + 1 < passes) continue;  // keep the current buffers (last pass always writes perm)
    uint64_t* kout = key_bufs[done % 2];
    int64_t* iout = idx_bufs[out_sel];
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        int64_t* h = hist.data() + c * radix;
        const int64_t e = std::min(n, (c + 1) * chunk_len);
        for (int64_t i = c * chunk_len; i < e; ++i) {
          const int64_t pos = h[(kin[i] >> shift) & mask]++;
          kout[pos] = kin[i];
          iout[pos] = iin ? iin[i] : i;
        }
      }
    });
    kin = kout;
    iin = iout;
    ++done;
    out_sel ^= 1;
  }
  if (iin != perm) std::copy(iin, iin + n, perm);
  if (sorted) std::copy(kin, kin + n, sorted);
}

// DSVT rotated sets, fast paths: (indices, padding, set_window) into out, or false when they do not apply.
// sets_bitmap (sets_bitmap_cpu.cpp): one counting sort by window, then each window ordered through
// occupancy bitmaps of its cells; false on duplicate coordinates or windows over 4096 cells. sets_counting
// (sets_counting_cpu.cpp): counting sorts; false when the bucket arrays would be too large (the caller
// then radix-sorts).
using SetsOut = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
bool sets_bitmap(const int32_t* c, int64_t V, at::IntArrayRef sxyz, const WindowParams& p, int64_t tau,
                 const at::TensorOptions& i64, const at::TensorOptions& b8, SetsOut& out);
bool sets_counting(const int32_t* c, int64_t V, at::IntArrayRef sxyz, const WindowParams& p, int64_t tau,
                   const at::TensorOptions& i64, const at::TensorOptions& b8, SetsOut& out);

}  // namespace partition
}  // namespace pc3d
