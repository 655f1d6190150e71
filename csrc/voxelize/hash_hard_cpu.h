// The one-sample hard voxelizer of the CPU kernel (voxelize_cpu.cpp picks it for inputs without batch_idx):
// first-seen hashing on one thread, no sort. Same output as the sort path; the tests compare both.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <tuple>

#include "voxelize/cells_cpu.h"
#include "voxelize/voxelize_common.h"
#include "voxelize/workspace_cpu.h"

namespace pc3d {
namespace voxelize {

// How many points ahead hash_hard_impl prefetches table slots.
constexpr int64_t kPrefetch = 16;

// Copies one C-float point row. kC > 0: C known at compile time (a few register moves, no memcpy call).
template <int kC>
inline void copy_row(const float* src, float* dst, int64_t ncol_rt) {
  const int64_t ncol = kC > 0 ? kC : ncol_rt;
  for (int64_t c = 0; c < ncol; ++c) dst[c] = src[c];
}

// Second pass of hash_hard_impl: writes the voxels from the points in input order. Voxel ids were
// given in first-seen order, so the first point of voxel v arrives exactly when v voxels exist: that
// point starts the voxel (row 0, zero padding, coords); later points fill rows 1..P-1 while there is
// room. The (V, P, C) output is thus written front to back as voxels appear, never zero-filled apart.
template <int kC>
void hash_fill(const float* pts, int64_t n, int64_t ncol_rt, int64_t max_points, const int32_t* vid,
               const int32_t* vcell, float* vo, int32_t* co, int32_t* nu) {
  const int64_t ncol = kC > 0 ? kC : ncol_rt;
  const int64_t stride = max_points * ncol;
  int64_t created = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = vid[i];
    if (v < 0) continue;
    const float* src = pts + i * ncol;
    float* dst = vo + v * stride;
    if (v == created) {
      ++created;
      copy_row<kC>(src, dst, ncol);
      std::fill(dst + ncol, dst + stride, 0.f);
      nu[v] = 1;
      co[4 * v] = 0;
      co[4 * v + 1] = vcell[3 * v];
      co[4 * v + 2] = vcell[3 * v + 1];
      co[4 * v + 3] = vcell[3 * v + 2];
    } else {
      const int32_t c = nu[v];
      if (c < max_points) {
        copy_row<kC>(src, dst + c * ncol, ncol);
        nu[v] = c + 1;
      }
    }
  }
}

// A slot of hash_hard_impl's table: key and voxel id in one 8-byte word (one cache line read per
// probe) when keys fit in 32 bits, else 16 bytes. All-ones bytes mark an empty slot (the key then is
// the all-ones sentinel, never a valid key: see fits_u32).
struct Slot32 {
  uint64_t v;
  using Key = uint32_t;
  Key key() const { return static_cast<Key>(v); }
  int64_t id() const { return static_cast<int64_t>(v >> 32); }
  static Slot32 make(Key k, int64_t id) { return {(static_cast<uint64_t>(id) << 32) | k}; }
};
struct Slot64 {
  uint64_t k;
  int64_t i;
  using Key = uint64_t;
  Key key() const { return k; }
  int64_t id() const { return i; }
  static Slot64 make(Key key, int64_t id) { return {key, id}; }
};

// Hard voxelization of one sample (no batch_idx) by first-seen hashing, one thread, no sort:
//   1. per point, its key (key_chunk's quantisation) is looked up in an open-addressing table
//      (linear probing, >= 2 slots per point, so at most half full); a new key gets the next voxel
//      id, so ids are in first-seen order by construction; ids >= max_voxels mark dropped voxels
//      (their key stays in the table so their later points are dropped too);
//   2. hash_fill writes the output in input order.
// Same output as the sort path (the tests compare both), with one random access per point (the
// table: 2 MB for 100k points, 4 MB for 150k; prefetched a few points ahead) instead of two radix
// scatters, the run grouping, the first-seen numbering and a gather from the sorted runs.
template <typename Slot>
std::tuple<at::Tensor, at::Tensor, at::Tensor> hash_hard_impl(const at::Tensor& pts, const VoxelGrid& g,
                                                              int64_t max_points, int64_t max_voxels) {
  using Key = typename Slot::Key;
  const int64_t n = pts.size(0), ncol = pts.size(1);
  const float* p = pts.data_ptr<float>();
  int bits = 4;
  while ((int64_t(1) << bits) < 2 * n) ++bits;
  const int64_t cap = int64_t(1) << bits;
  const uint64_t slot_mask = static_cast<uint64_t>(cap - 1);
  constexpr Key kEmpty = static_cast<Key>(~uint64_t(0));
  // Table (cap), voxel id of each point (n), (z, y, x) of each voxel id (<= n).
  Workspace ws(Workspace::bytes_for({sizeof(Slot) * cap, sizeof(int32_t) * n, sizeof(int32_t) * 3 * n}));
  Slot* table = ws.take<Slot>(cap);
  int32_t* vid = ws.take<int32_t>(n);
  int32_t* vcell = ws.take<int32_t>(3 * n);
  std::memset(static_cast<void*>(table), 0xFF, sizeof(Slot) * cap);

  alignas(64) float col[3][kKeyBlock];
  alignas(64) int32_t cell[3][kKeyBlock];
  alignas(64) Key bkey[kKeyBlock];
  alignas(64) uint64_t home[kKeyBlock];
  int64_t next = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kKeyBlock) {
    const int64_t len = std::min(kKeyBlock, n - b0);
    block_cells(p, b0, len, ncol, g, col, cell);
    // Keys and home slots of the block first, so the probe loop can prefetch slots ahead: a probe
    // misses the cache when the table outgrows it, and the new-voxel branch mispredicts often.
    for (int64_t j = 0; j < len; ++j) {
      const int64_t x = cell[0][j], y = cell[1][j], z = cell[2][j];
      const bool ok = (x | y | z) >= 0;
      const Key key = ok ? static_cast<Key>((z * g.dims[1] + y) * g.dims[0] + x) : kEmpty;
      bkey[j] = key;
      // Runs of 8 cells along x share a cache line of slots (neighbouring points hit the same line);
      // Fibonacci hashing of key / 8 spreads the runs over the table.
      home[j] = (((static_cast<uint64_t>(key) >> 3) * UINT64_C(0x9E3779B97F4A7C15)) >> (67 - bits) << 3) |
                (static_cast<uint64_t>(key) & 7);
    }
    for (int64_t j = 0; j < len; ++j) {
      if (j + kPrefetch < len) __builtin_prefetch(table + home[j + kPrefetch]);
      const Key key = bkey[j];
      if (key == kEmpty) {
        vid[b0 + j] = -1;
        continue;
      }
      uint64_t h = home[j];
      int64_t id;
      while (true) {
        const Slot sl = table[h];
        if (sl.key() == key) {
          id = sl.id();
          break;
        }
        if (sl.key() == kEmpty) {
          table[h] = Slot::make(key, next);
          vcell[3 * next] = cell[2][j];
          vcell[3 * next + 1] = cell[1][j];
          vcell[3 * next + 2] = cell[0][j];
          id = next++;
          break;
        }
        h = (h + 1) & slot_mask;
      }
      vid[b0 + j] = id < max_voxels ? static_cast<int32_t>(id) : -1;
    }
  }

  const int64_t nv = std::min(next, max_voxels);
  at::Tensor voxels = at::empty({nv, max_points, ncol}, pts.options());
  at::Tensor coords = at::empty({nv, 4}, pts.options().dtype(at::kInt));
  at::Tensor num = at::empty({nv}, pts.options().dtype(at::kInt));
  float* vo = voxels.data_ptr<float>();
  int32_t* co = coords.data_ptr<int32_t>();
  int32_t* nu = num.data_ptr<int32_t>();
  switch (ncol) {
    case 4: hash_fill<4>(p, n, ncol, max_points, vid, vcell, vo, co, nu); break;
    case 5: hash_fill<5>(p, n, ncol, max_points, vid, vcell, vo, co, nu); break;
    default: hash_fill<0>(p, n, ncol, max_points, vid, vcell, vo, co, nu); break;
  }
  return {voxels, coords, num};
}

}  // namespace voxelize
}  // namespace pc3d
