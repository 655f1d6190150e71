// Stable parallel LSD radix sort of (voxel key, point index) items for the CPU voxelizer.
//
// Why a sort: grouping points by voxel with a stable sort needs no hash table, no per-point atomics
// and no dense grid (a dense int32 Waymo grid is 1504 x 1504 x 40 = 360 MB). Keys have only as many
// bits as the grid needs (27 for Waymo), so a 150k-point frame sorts in 2-3 passes.
//
// Work is split into contiguous chunks (one per thread). Each pass: every chunk counts its digits, a
// serial prefix over (digit, chunk) gives each chunk its write offsets, every chunk scatters its items
// in order. Chunk c's items of a digit land before chunk c+1's, so the sort is stable and its result
// does not depend on the thread count.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace pc3d {
namespace voxelize {

// Key in the high 32 bits, point index in the low 32: one 8-byte stream per scatter. Used when every
// key (and the dropped-point sentinel) fits in 32 bits, i.e. grids up to 2^32 - 1 cells x batch.
struct PackedItem {
  uint64_t v;
  static constexpr uint64_t kSkip = 0xFFFFFFFFull;
  static PackedItem make(uint64_t key, int64_t idx) { return {(key << 32) | static_cast<uint32_t>(idx)}; }
  uint64_t key() const { return v >> 32; }
  int64_t idx() const { return static_cast<int64_t>(v & 0xFFFFFFFFull); }
};

// Any int64 key (huge grids).
struct WideItem {
  uint64_t k;
  int64_t i;
  static constexpr uint64_t kSkip = ~uint64_t(0);
  static WideItem make(uint64_t key, int64_t idx) { return {key, idx}; }
  uint64_t key() const { return k; }
  int64_t idx() const { return i; }
};

// Runs f(chunk, begin, end) for nchunks contiguous chunks of [0, n), chunks in parallel.
template <typename F>
void for_chunks(int64_t n, int64_t nchunks, const F& f) {
  if (nchunks <= 1) {
    f(int64_t(0), int64_t(0), n);  // no fork/join for small inputs
    return;
  }
  at::parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) f(c, n * c / nchunks, n * (c + 1) / nchunks);
  });
}

// How many chunks to split n elements into: one per thread, but >= ~32k elements each, because
// below that the fork/join costs more than the work.
inline int64_t num_chunks(int64_t n) {
  const int64_t t = std::max<int64_t>(1, at::get_num_threads());
  return std::max<int64_t>(1, std::min<int64_t>(t, n / 32768));
}

// The digit layout for keys of `bits` bits: `passes` digits of `width` bits, lowest first.
struct RadixPlan {
  int passes;
  int width;
  explicit RadixPlan(int bits) {
    // Digits of <= 12 bits keep a chunk's histogram (16 KB of int32) in L1 and the scatter's write
    // streams few enough for the L2; at least one pass because the first pass also compacts.
    passes = std::max(1, (bits + 13) / 14);
    width = std::max(1, (bits + passes - 1) / passes);
  }
  int64_t bins() const { return int64_t(1) << width; }
};

// Turns per-chunk digit counts hist[c * bins + d] into per-chunk write offsets, in place; returns
// the number of counted items.
inline int64_t counts_to_offsets(std::vector<int32_t>& hist, int64_t nchunks, int64_t bins) {
  int64_t run = 0;
  for (int64_t d = 0; d < bins; ++d) {
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t cnt = hist[c * bins + d];
      hist[c * bins + d] = static_cast<int32_t>(run);
      run += cnt;
    }
  }
  return run;
}

// One scatter pass by digit (key >> shift) & (bins - 1), given per-chunk write offsets for the same
// chunking of src. Items with key == kSkip (dropped points) are left out when `compact` is set.
template <typename Item>
void radix_scatter(const Item* src, int64_t n, Item* dst, int shift, int64_t bins, std::vector<int32_t>& offsets,
                   int64_t nchunks, bool compact) {
  const uint64_t mask = static_cast<uint64_t>(bins - 1);
  for_chunks(n, nchunks, [&](int64_t c, int64_t b, int64_t e) {
    int32_t* off = offsets.data() + c * bins;
    for (int64_t i = b; i < e; ++i) {
      const Item it = src[i];
      const uint64_t k = it.key();
      if (compact && k == Item::kSkip) continue;
      dst[off[(k >> shift) & mask]++] = it;
    }
  });
}

// Per-chunk histogram of digit (key >> shift) of src[0, n) (no dropped items in src).
template <typename Item>
void radix_histogram(const Item* src, int64_t n, int shift, int64_t bins, std::vector<int32_t>& hist,
                     int64_t nchunks) {
  const uint64_t mask = static_cast<uint64_t>(bins - 1);
  hist.assign(nchunks * bins, 0);
  for_chunks(n, nchunks, [&](int64_t c, int64_t b, int64_t e) {
    int32_t* h = hist.data() + c * bins;
    for (int64_t i = b; i < e; ++i) ++h[(src[i].key() >> shift) & mask];
  });
}

// Sorts the valid items of items[0, n) (key != kSkip) by key, stably. hist0 holds the per-chunk
// counts of the lowest digit of the valid items for the chunking num_chunks(n) (the key pass computes
// them for free). The passes ping-pong between tmp and items (both n long, both overwritten); returns
// the buffer holding the result and sets *m to the number of valid items.
template <typename Item>
Item* radix_sort(Item* items, int64_t n, const RadixPlan& plan, std::vector<int32_t>& hist0, Item* tmp,
                 int64_t* m) {
  const int64_t bins = plan.bins();
  *m = counts_to_offsets(hist0, num_chunks(n), bins);
  radix_scatter(items, n, tmp, 0, bins, hist0, num_chunks(n), /*compact=*/true);
  Item* cur = tmp;
  Item* nxt = items;
  const int64_t mchunks = num_chunks(*m);
  std::vector<int32_t> hist;
  for (int p = 1; p < plan.passes; ++p) {
    radix_histogram(cur, *m, p * plan.width, bins, hist, mchunks);
    counts_to_offsets(hist, mchunks, bins);
    radix_scatter(cur, *m, nxt, p * plan.width, bins, hist, mchunks, /*compact=*/false);
    std::swap(cur, nxt);
  }
  return cur;
}

}  // namespace voxelize
}  // namespace pc3d
