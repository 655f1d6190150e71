// DSVT rotated sets and ScatterFormer window segments on CPU. Both group voxels by the window id of
// partition_keys.h with a parallel stable radix sort; rotated sets also order voxels inside a window.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "partition/partition_keys.h"
#include "partition/partition_cpu.h"

namespace pc3d {
namespace partition {
namespace {

using at::Tensor;

WindowParams make_params(at::IntArrayRef sparse_xyz, at::IntArrayRef window_xyz, at::IntArrayRef shift_xyz,
                         const char* op) {
  TORCH_CHECK(sparse_xyz.size() == 3 && window_xyz.size() == 3 && shift_xyz.size() == 3, op,
              ": sparse_shape, window_shape and shift need 3 entries (x, y, z)");
  WindowParams p;
  for (int a = 0; a < 3; ++a) {
    TORCH_CHECK(sparse_xyz[a] > 0 && window_xyz[a] > 0 && shift_xyz[a] >= 0 && shift_xyz[a] <= window_xyz[a],
                op, ": need sparse_shape > 0, window_shape > 0 and 0 <= shift <= window_shape");
    p.W[a] = window_xyz[a];
    p.sh[a] = shift_xyz[a];
    p.M[a] = (sparse_xyz[a] + p.W[a] - 1) / p.W[a] + 1;
  }
  return p;
}

// Per-axis additive tables of the (linear) window-id and in-window-key formulas of partition_keys.h,
// so a voxel's keys are a few table lookups and adds instead of divisions.
struct AxisTables {
  std::vector<int64_t> win, key0, key1;
};

AxisTables axis_tables(int64_t extent, int axis, const WindowParams& p) {
  AxisTables t;
  t.win.resize(extent);
  t.key0.resize(extent);
  t.key1.resize(extent);
  for (int64_t c = 0; c < extent; ++c) {
    const int64_t q = (c + p.sh[axis]) / p.W[axis], r = (c + p.sh[axis]) % p.W[axis];
    // axis 0 = x, 1 = y, 2 = z; the *_parts arguments are (z, y, x)
    t.win[c] = window_id_parts(0, axis == 2 ? q : 0, axis == 1 ? q : 0, axis == 0 ? q : 0, p);
    t.key0[c] = inwindow_key_parts(axis == 2 ? r : 0, axis == 1 ? r : 0, axis == 0 ? r : 0, p, 0);
    t.key1[c] = inwindow_key_parts(axis == 2 ? r : 0, axis == 1 ? r : 0, axis == 0 ? r : 0, p, 1);
  }
  return t;
}

// Composite keys window_id * span + inwindow_key(order 0 / order 1) for every voxel in one pass
// (key1 may be null; span = 1 gives the window id alone). Returns the largest window id.
int64_t window_keys(const int32_t* c, int64_t V, at::IntArrayRef sparse_xyz, const WindowParams& p, int64_t span,
                    uint64_t* key0, uint64_t* key1) {
  const int64_t sx = sparse_xyz[0], sy = sparse_xyz[1], sz = sparse_xyz[2];
  const int64_t per_b = p.M[0] * p.M[1] * p.M[2];
  const bool tab = sx <= (1 << 22) && sy <= (1 << 22) && sz <= (1 << 22);
  const AxisTables tx = axis_tables(tab ? sx : 0, 0, p), ty = axis_tables(tab ? sy : 0, 1, p),
                   tz = axis_tables(tab ? sz : 0, 2, p);
  return at::parallel_reduce(
      0, V, kSerialBelow, int64_t(0),
      [&](int64_t s, int64_t e, int64_t m) {
        for (int64_t i = s; i < e; ++i) {
          const int32_t* r = c + 4 * i;
          check_voxel(r, i, sx, sy, sz);
          int64_t w, k0, k1;
          if (tab) {
            w = r[0] * per_b + tx.win[r[3]] + ty.win[r[2]] + tz.win[r[1]];
            k0 = tx.key0[r[3]] + ty.key0[r[2]] + tz.key0[r[1]];
            k1 = tx.key1[r[3]] + ty.key1[r[2]] + tz.key1[r[1]];
          } else {
            w = window_id(r[0], r[1], r[2], r[3], p);
            k0 = inwindow_key(r[1], r[2], r[3], p, 0);
            k1 = inwindow_key(r[1], r[2], r[3], p, 1);
          }
          key0[i] = uint64_t(span > 1 ? w * span + k0 : w);
          if (key1) key1[i] = uint64_t(w * span + k1);
          m = std::max(m, w);
        }
        return m;
      },
      [](int64_t a, int64_t b) { return std::max(a, b); });
}

// Runs of equal window id in sorted composite keys: start and length per window, ascending window id.
void window_runs(const std::vector<uint64_t>& sorted, int64_t span, std::vector<int64_t>& start,
                 std::vector<int64_t>& len, std::vector<int64_t>& wid) {
  const int64_t V = int64_t(sorted.size());
  for (int64_t pos = 0; pos < V;) {
    const uint64_t w = sorted[pos] / uint64_t(span);
    const int64_t end =
        std::lower_bound(sorted.begin() + pos, sorted.end(), (w + 1) * uint64_t(span)) - sorted.begin();
    start.push_back(pos);
    len.push_back(end - pos);
    wid.push_back(int64_t(w));
    pos = end;
  }
}

enum class SetsPath { kAny, kBitmap, kCounting, kRadix };

SetsPath forced_sets_path() {
  const char* s = std::getenv("PC3D_SETS_PATH");
  if (!s || !*s) return SetsPath::kAny;
  if (!std::strcmp(s, "bitmap")) return SetsPath::kBitmap;
  if (!std::strcmp(s, "counting")) return SetsPath::kCounting;
  if (!std::strcmp(s, "radix")) return SetsPath::kRadix;
  TORCH_CHECK_VALUE(false, "PC3D_SETS_PATH must be bitmap, counting or radix, got '", s, "'");
}

std::tuple<Tensor, Tensor, Tensor> rotated_set_partition_cpu(const Tensor& coords_in, at::IntArrayRef sparse_xyz,
                                                             at::IntArrayRef window_xyz, at::IntArrayRef shift_xyz,
                                                             int64_t tau) {
  TORCH_CHECK(coords_in.dim() == 2 && coords_in.size(1) == 4 && coords_in.scalar_type() == at::kInt,
              "rotated_set_partition: coords must be (V, 4) int32");
  TORCH_CHECK(tau > 0, "rotated_set_partition: set_size must be positive");
  const WindowParams p = make_params(sparse_xyz, window_xyz, shift_xyz, "rotated_set_partition");
  const Tensor coords = coords_in.contiguous();
  const int64_t V = coords.size(0);
  const auto i64 = coords.options().dtype(at::kLong);
  if (V == 0) {
    return {at::empty({2, 0, tau}, i64), at::empty({2, 0, tau}, coords.options().dtype(at::kBool)),
            at::empty({0}, i64)};
  }
  const int32_t* c = coords.data_ptr<int32_t>();
  // Bitmap path (sets_bitmap_cpu.cpp), else the counting path (sets_counting_cpu.cpp), else the radix
  // path below. PC3D_SETS_PATH=bitmap|counting|radix runs that path alone and raises when it does not
  // apply (tests run every path on the same inputs; the result is the same on each, only the speed differs).
  const SetsPath only = forced_sets_path();
  SetsOut fast;
  const auto b8 = coords.options().dtype(at::kBool);
  if (only == SetsPath::kAny || only == SetsPath::kBitmap) {
    if (sets_bitmap(c, V, sparse_xyz, p, tau, i64, b8, fast)) return fast;
    TORCH_CHECK(only == SetsPath::kAny, "rotated_set_partition: PC3D_SETS_PATH=bitmap, but the bitmap path does not "
                "apply to this input (duplicate coordinates, windows over 4096 cells or too many windows)");
  }
  if (only == SetsPath::kAny || only == SetsPath::kCounting) {
    if (sets_counting(c, V, sparse_xyz, p, tau, i64, b8, fast)) return fast;
    TORCH_CHECK(only == SetsPath::kAny, "rotated_set_partition: PC3D_SETS_PATH=counting, but the counting path "
                "does not apply to this input (too many windows or window cells)");
  }
  // Radix path (huge grids, windows or batch indices).
  const int64_t span = p.W[0] * p.W[1] * p.W[2];
  std::vector<uint64_t> key0(V), key1(V), sorted(V);
  const int64_t maxwin = window_keys(c, V, sparse_xyz, p, span, key0.data(), key1.data());
  const int bits = bit_length(uint64_t(maxwin + 1) * uint64_t(span) - 1);
  std::vector<int64_t> perm0(V), perm1(V);
  radix_argsort(key0.data(), V, bits, perm0.data(), sorted.data());
  std::vector<int64_t> w_start, w_len, w_id;
  window_runs(sorted, span, w_start, w_len, w_id);
  // The second order has the same windows in the same places: only the order inside a window differs.
  radix_argsort(key1.data(), V, bits, perm1.data(), nullptr);

  const int64_t nw = int64_t(w_start.size());
  std::vector<int64_t> set0(nw + 1, 0);
  for (int64_t w = 0; w < nw; ++w) set0[w + 1] = set0[w] + (w_len[w] + tau - 1) / tau;
  const int64_t nsets = set0[nw];
  Tensor indices = at::empty({2, nsets, tau}, i64);
  Tensor padding = at::empty({2, nsets, tau}, coords.options().dtype(at::kBool));
  Tensor set_window = at::empty({nsets}, i64);
  int64_t* idx = indices.data_ptr<int64_t>();
  bool* pad = padding.data_ptr<bool>();
  int64_t* sw = set_window.data_ptr<int64_t>();
  const int64_t plane = nsets * tau;
  at::parallel_for(0, nw, std::max<int64_t>(1, kSerialBelow / (2 * tau)), [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t n = w_len[w], S = set0[w + 1] - set0[w], base = w_start[w];
      for (int64_t k = 0; k < S; ++k) {
        const int64_t s = set0[w] + k;
        sw[s] = w_id[w];
        int64_t prev = -1;
        for (int64_t j = 0; j < tau; ++j) {
          const int64_t r = set_slot_rank(k, j, n, S, tau);
          idx[s * tau + j] = perm0[base + r];
          idx[plane + s * tau + j] = perm1[base + r];
          // Slot j pads when it repeats slot j - 1 (the rank sequence is non-decreasing).
          pad[s * tau + j] = pad[plane + s * tau + j] = (r == prev);
          prev = r;
        }
      }
    }
  });
  return {indices, padding, set_window};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> sort_by_window_cpu(const Tensor& coords_in, at::IntArrayRef sparse_xyz,
                                                              at::IntArrayRef window_xyz,
                                                              at::IntArrayRef shift_xyz) {
  TORCH_CHECK(coords_in.dim() == 2 && coords_in.size(1) == 4 && coords_in.scalar_type() == at::kInt,
              "sort_by_window: coords must be (V, 4) int32");
  const WindowParams p = make_params(sparse_xyz, window_xyz, shift_xyz, "sort_by_window");
  const Tensor coords = coords_in.contiguous();
  const int64_t V = coords.size(0);
  const auto i64 = coords.options().dtype(at::kLong);
  Tensor order = at::empty({V}, i64);
  if (V == 0) return {order, at::empty({0}, i64), at::empty({0}, i64), at::empty({0}, i64)};
  std::vector<uint64_t> key(V), sorted(V);
  const int64_t maxwin = window_keys(coords.data_ptr<int32_t>(), V, sparse_xyz, p, 1, key.data(), nullptr);
  radix_argsort(key.data(), V, bit_length(uint64_t(maxwin)), order.data_ptr<int64_t>(), sorted.data());
  std::vector<int64_t> start, len, wid;
  window_runs(sorted, 1, start, len, wid);
  const int64_t nw = int64_t(start.size());
  Tensor offsets = at::empty({nw}, i64), counts = at::empty({nw}, i64), ids = at::empty({nw}, i64);
  std::copy(start.begin(), start.end(), offsets.data_ptr<int64_t>());
  std::copy(len.begin(), len.end(), counts.data_ptr<int64_t>());
  std::copy(wid.begin(), wid.end(), ids.data_ptr<int64_t>());
  return {order, offsets, counts, ids};
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CPU, m) {
  m.impl("rotated_set_partition", &rotated_set_partition_cpu);
  m.impl("sort_by_window", &sort_by_window_cpu);
}

}  // namespace partition
}  // namespace pc3d
