// FlatFormer flattened-window partition on CPU: snake keys, a parallel stable radix sort on (b, key),
// then every sample is cut into groups of exactly G (the last group padded with its own voxels).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "partition/partition_keys.h"
#include "partition/partition_cpu.h"

namespace pc3d {
namespace partition {
namespace {

using at::Tensor;

std::tuple<Tensor, Tensor, Tensor, Tensor> flat_window_partition_cpu(const Tensor& coords_in,
                                                                     at::IntArrayRef sparse_xyz,
                                                                     at::IntArrayRef window_xy,
                                                                     int64_t G, int64_t axis, bool shift) {
  TORCH_CHECK(coords_in.dim() == 2 && coords_in.size(1) == 4 && coords_in.scalar_type() == at::kInt,
              "flat_window_partition: coords must be (V, 4) int32");
  TORCH_CHECK(sparse_xyz.size() == 3 && window_xy.size() == 2 && G > 0 && (axis == 0 || axis == 1),
              "flat_window_partition: bad sparse_shape/window_shape/group_size/axis");
  TORCH_CHECK(window_xy[0] > 0 && window_xy[1] > 0 && sparse_xyz[0] > 0 && sparse_xyz[1] > 0 && sparse_xyz[2] > 0,
              "flat_window_partition: shapes must be positive");
  const Tensor coords = coords_in.contiguous();
  const int64_t V = coords.size(0);
  const auto i64 = coords.options().dtype(at::kLong);
  if (V == 0) {
    return {at::empty({0, G}, i64), at::empty({0}, i64), at::empty({0}, i64),
            at::empty({0, G}, coords.options().dtype(at::kBool))};
  }
  const FlatParams p = make_flat_params(sparse_xyz[0], sparse_xyz[1], window_xy[0], window_xy[1], axis == 1, shift);

  const int32_t* c = coords.data_ptr<int32_t>();
  // Division tables for grids of usual size; huge grids fall back to dividing per voxel.
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
      gb[g] = s_b[s];
      for (int64_t j = 0; j < G; ++j) {
        // Padding cycles over the real voxels of this (last) group: slot j repeats slot j % real.
        const int64_t v = perm[p0 + (j < real ? j : j % real)];
        idx[g * G + j] = v;
        pad[g * G + j] = j >= real;
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
