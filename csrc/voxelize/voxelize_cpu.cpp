// CPU kernels of voxelize_hard and voxelize_dynamic. Below: the sort path (batched inputs, the dynamic
// voxelizer, and one large sample on several threads); one-sample hard voxelization otherwise takes the
// first-seen hash path of hash_hard_cpu.h.
//
// Sort path (every step parallel over contiguous chunks, no atomics, no hash table, no dense grid):
//   1. key[i] = linear voxel index of point i (b major), or a sentinel when the point is dropped;
//   2. stable radix sort of (key, i) over the valid points -> each voxel's points are one run, in
//      input order (radix_sort_cpu.h);
//   3. runs ("groups") are found by comparing neighbours;
//   4. first-seen order: mark[first point of group g] = g, then a scan over the points in input
//      order numbers the groups of each sample 0, 1, 2, ... (per-chunk counts + prefix, so the result
//      is the same for every thread count);
//   5. voxels past max_voxels of their sample are dropped; outputs are written per voxel.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <tuple>
#include <type_traits>
#include <vector>

#include "voxelize/cells_cpu.h"
#include "voxelize/hash_hard_cpu.h"
#include "voxelize/radix_sort_cpu.h"
#include "voxelize/voxelize_common.h"
#include "voxelize/workspace_cpu.h"

namespace pc3d {
namespace voxelize {
namespace {

// The grouping of the valid points shared by both voxelizers.
template <typename Item>
struct Grouping {
  int64_t num_groups = 0;  // G = occupied voxels before the max_voxels cut
  int64_t num_voxels = 0;  // V = kept voxels
  const Item* sorted = nullptr;  // (M,) valid items by key, stable
  const int32_t* group_start = nullptr;  // (G + 1,) run g is sorted[group_start[g], group_start[g+1])
  const int32_t* group_voxel = nullptr;  // (G,) output voxel of run g, -1 when cut by max_voxels
  const int32_t* voxel_group = nullptr;  // (V,) run of output voxel v
  // All arrays above live in this per-thread scratch (sized for the worst case M = G = V = N).
  std::unique_ptr<Workspace> ws;
};

// Step 1 for points [b, e): item (key or sentinel, index), the first digit's histogram, and for the
// dynamic voxelizer the per-point coords. Per block: x, y, z are copied out of the (N, C) rows,
// quantised column by column (axis_cells), then keyed point by point without branches (out-of-range
// points are common and unpredictable); g is a by-value copy so the stores cannot alias it.
template <typename Item, bool kBatch, bool kCoords>
bool key_chunk(const float* pts, int64_t b, int64_t e, int64_t ncol, const int64_t* bidx, const VoxelGrid g,
               uint64_t mask, Item* items, int32_t* point_coords, int32_t* hist) {
  alignas(64) float col[3][kKeyBlock];
  alignas(64) int32_t cell[3][kKeyBlock];
  bool bad = false;
  for (int64_t b0 = b; b0 < e; b0 += kKeyBlock) {
    const int64_t len = std::min(kKeyBlock, e - b0);
    block_cells(pts, b0, len, ncol, g, col, cell);
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = b0 + j;
      const int64_t x = cell[0][j], y = cell[1][j], z = cell[2][j];
      bool ok = (x | y | z) >= 0;  // -1 on any axis: dropped
      int64_t s = 0;
      if (kBatch) {
        s = bidx[i];
        const bool in_batch = (s >= 0) & (s < g.batch_size);
        bad |= !in_batch;
        ok &= in_batch;
      }
      const uint64_t key =
          ok ? static_cast<uint64_t>(((s * g.dims[2] + z) * g.dims[1] + y) * g.dims[0] + x) : Item::kSkip;
      items[i] = Item::make(key, i);
      hist[key & mask] += ok;
      if (kCoords) {
        int32_t* pc = point_coords + 4 * i;
        pc[0] = ok ? static_cast<int32_t>(s) : -1;
        pc[1] = ok ? static_cast<int32_t>(z) : -1;
        pc[2] = ok ? static_cast<int32_t>(y) : -1;
        pc[3] = ok ? static_cast<int32_t>(x) : -1;
      }
    }
  }
  return bad;
}

// Step 1 over all points, in parallel chunks; hist0 gets the per-chunk counts of the first radix
// digit, so the first sort pass needs no extra read of the keys.
template <typename Item>
void compute_items(const float* pts, int64_t n, int64_t ncol, const int64_t* bidx, const VoxelGrid& g,
                   int width, Item* items, int32_t* point_coords, std::vector<int32_t>& hist0) {
  const int64_t nchunks = num_chunks(n);
  const int64_t bins = int64_t(1) << width;
  const uint64_t mask = static_cast<uint64_t>(bins - 1);
  hist0.assign(nchunks * bins, 0);
  std::vector<char> bad_batch(nchunks, 0);
  for_chunks(n, nchunks, [&](int64_t ch, int64_t b, int64_t e) {
    int32_t* h = hist0.data() + ch * bins;
    bool bad;
    if (bidx) {
      bad = point_coords ? key_chunk<Item, true, true>(pts, b, e, ncol, bidx, g, mask, items, point_coords, h)
                         : key_chunk<Item, true, false>(pts, b, e, ncol, bidx, g, mask, items, point_coords, h);
    } else {
      bad = point_coords ? key_chunk<Item, false, true>(pts, b, e, ncol, bidx, g, mask, items, point_coords, h)
                         : key_chunk<Item, false, false>(pts, b, e, ncol, bidx, g, mask, items, point_coords, h);
    }
    bad_batch[ch] = bad;
  });
  for (char bad : bad_batch) TORCH_CHECK(!bad, "voxelize: batch_idx has values outside [0, ", g.batch_size, ")");
}

// Steps 2-5. max_voxels < 0 means no cut (dynamic voxelization).
template <typename Item>
void group_points(const float* pts, int64_t n, int64_t ncol, const int64_t* bidx, const VoxelGrid& g,
                  int64_t max_voxels, int32_t* point_coords, Grouping<Item>& out) {
  const RadixPlan plan(bits_for(static_cast<uint64_t>(g.cells * g.batch_size - 1)));
  std::vector<int32_t> hist0;
  // One entry per take() below (each take may spend up to 63 bytes on alignment): items, tmp,
  // group_start (m + 1 <= n + 1), mark (n), group_voxel (<= n), voxel_group (<= n).
  out.ws.reset(new Workspace(Workspace::bytes_for({sizeof(Item) * n, sizeof(Item) * n, sizeof(int32_t) * (n + 1),
                                                    sizeof(int32_t) * n, sizeof(int32_t) * n,
                                                    sizeof(int32_t) * n})));
  Workspace& ws = *out.ws;
  Item* items = ws.take<Item>(n);
  Item* tmp = ws.take<Item>(n);
  compute_items<Item>(pts, n, ncol, bidx, g, plan.width, items, point_coords, hist0);
  int64_t m = 0;
  const Item* sorted = radix_sort<Item>(items, n, plan, hist0, tmp, &m);
  out.sorted = sorted;

  // Step 3: run starts, counted per chunk then written at the chunk's prefix offset.
  // The light passes below (a compare or a flag per element) run on one thread: with 2 threads they
  // would save ~0.1 ms each on a quiet machine, but every fork/join costs a scheduler round trip on
  // a busy one (measured: 2-thread runs 10x slower than 1-thread ones with ~9 joins per call). The
  // heavy passes (keys, radix scatters, voxel fill) stay parallel. The chunked code is kept so a
  // chunk count > 1 stays correct.
  const int64_t mchunks = 1;
  std::vector<int64_t> starts(mchunks + 1, 0);
  auto is_start = [&](int64_t j) { return j == 0 || sorted[j].key() != sorted[j - 1].key(); };
  if (mchunks > 1) {
    for_chunks(m, mchunks, [&](int64_t c, int64_t b, int64_t e) {
      int64_t cnt = 0;
      for (int64_t j = b; j < e; ++j) cnt += is_start(j);
      starts[c + 1] = cnt;
    });
    for (int64_t c = 0; c < mchunks; ++c) starts[c + 1] += starts[c];
  }
  int32_t* gs = ws.take<int32_t>(m + 1);  // G <= M: sized before G is known, to need one pass
  out.group_start = gs;
  // Step 4 rides along: mark[first point of run g] = g (stable sort -> first item = lowest index).
  int32_t* mk = ws.take<int32_t>(n);
  const int64_t nchunks = 1;
  std::fill(mk, mk + n, -1);
  for_chunks(m, mchunks, [&](int64_t c, int64_t b, int64_t e) {
    int64_t o = starts[c];
    for (int64_t j = b; j < e; ++j) {
      if (is_start(j)) {
        mk[sorted[j].idx()] = static_cast<int32_t>(o);
        gs[o++] = static_cast<int32_t>(j);
      }
    }
    if (mchunks == 1) starts[1] = o;
  });
  const int64_t ng = starts[mchunks];
  gs[ng] = static_cast<int32_t>(m);
  out.num_groups = ng;

  // Number each sample's runs in input order of their first points: per-chunk counts, a prefix over
  // chunks (base[c][s] = rank inside sample s of chunk c's first marked point), then the numbering.
  const int64_t nb = g.batch_size;
  std::vector<int64_t> cnt(nchunks * nb, 0);
  if (nchunks > 1 || nb > 1) {
    for_chunks(n, nchunks, [&](int64_t c, int64_t b, int64_t e) {
      int64_t* cc = cnt.data() + c * nb;
      for (int64_t i = b; i < e; ++i) {
        if (mk[i] >= 0) ++cc[bidx ? bidx[i] : 0];
      }
    });
  } else {
    cnt[0] = ng;
  }
  std::vector<int64_t> sample_off(nb + 1, 0);
  for (int64_t s = 0; s < nb; ++s) {
    int64_t run = 0;
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t k = cnt[c * nb + s];
      cnt[c * nb + s] = run;
      run += k;
    }
    sample_off[s + 1] = sample_off[s] + (max_voxels < 0 ? run : std::min(run, max_voxels));
  }
  out.num_voxels = sample_off[nb];
  int32_t* gv = ws.take<int32_t>(ng);
  int32_t* vg = ws.take<int32_t>(out.num_voxels);
  out.group_voxel = gv;
  out.voxel_group = vg;
  for_chunks(n, nchunks, [&](int64_t c, int64_t b, int64_t e) {
    int64_t* base = cnt.data() + c * nb;
    for (int64_t i = b; i < e; ++i) {
      const int32_t r = mk[i];
      if (r < 0) continue;
      const int64_t s = bidx ? bidx[i] : 0;
      const int64_t rank = base[s]++;
      if (max_voxels >= 0 && rank >= max_voxels) {
        gv[r] = -1;
      } else {
        const int64_t v = sample_off[s] + rank;
        gv[r] = static_cast<int32_t>(v);
        vg[v] = r;
      }
    }
  });
}

// Exact n / d for n, d < 2^32 without a divide instruction: with c = ceil(2^64 / d), n / d is the high
// 64 bits of c * n (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019). d = 1
// (c would be 2^64) is passed through.
struct Div32 {
  uint64_t c;
  uint32_t d;
  explicit Div32(int64_t divisor)
      : c(divisor == 1 ? 0 : ~uint64_t(0) / static_cast<uint64_t>(divisor) + 1), d(static_cast<uint32_t>(divisor)) {}
  uint32_t operator()(uint32_t n) const {
    return d == 1 ? n : static_cast<uint32_t>((static_cast<unsigned __int128>(c) * n) >> 64);
  }
};

// decode_key for keys below 2^32 (PackedItem): three multiplies instead of three 64-bit divisions
// per voxel. Wider keys use decode_key.
struct KeyDecoder {
  Div32 w, h, dz;
  explicit KeyDecoder(const VoxelGrid& g) : w(g.dims[0]), h(g.dims[1]), dz(g.dims[2]) {}
  void operator()(uint64_t key, int32_t* out) const {
    const uint32_t k = static_cast<uint32_t>(key);
    const uint32_t kx = w(k);
    const uint32_t ky = h(kx);
    const uint32_t b = dz(ky);
    out[0] = static_cast<int32_t>(b);
    out[1] = static_cast<int32_t>(ky - b * dz.d);
    out[2] = static_cast<int32_t>(kx - ky * h.d);
    out[3] = static_cast<int32_t>(k - kx * w.d);
  }
};

// Writes the (b, z, y, x) of a key: the fast decoder for packed (32-bit) keys, decode_key otherwise.
template <typename Item>
struct Decoder {
  const VoxelGrid& g;
  explicit Decoder(const VoxelGrid& grid) : g(grid) {}
  void operator()(uint64_t key, int32_t* out) const { decode_key(g, static_cast<int64_t>(key), out); }
};
template <>
struct Decoder<PackedItem> : KeyDecoder {
  explicit Decoder(const VoxelGrid& grid) : KeyDecoder(grid) {}
};

// Writes voxel v's points (zero-padded to P rows) for voxels [b, e). kC > 0: C known at compile time
// so the row copy is a few register moves instead of a memcpy call.
template <int kC, typename Item>
void fill_voxels(int64_t b, int64_t e, const Grouping<Item>& gr, const float* pts, int64_t ncol_rt,
                 int64_t max_points, const VoxelGrid& g, float* vo, int32_t* co, int32_t* nu) {
  const int64_t ncol = kC > 0 ? kC : ncol_rt;
  const int32_t* gs = gr.group_start;
  const int32_t* vg = gr.voxel_group;
  const Decoder<Item> decode(g);
  for (int64_t v = b; v < e; ++v) {
    const int64_t grp = vg[v];
    const int64_t s = gs[grp];
    const int64_t k = std::min<int64_t>(gs[grp + 1] - s, max_points);
    float* dst = vo + v * max_points * ncol;
    for (int64_t q = 0; q < k; ++q) {
      const float* src = pts + gr.sorted[s + q].idx() * ncol;
      for (int64_t c = 0; c < ncol; ++c) dst[q * ncol + c] = src[c];
    }
    std::fill(dst + k * ncol, dst + max_points * ncol, 0.f);
    decode(gr.sorted[s].key(), co + 4 * v);
    nu[v] = static_cast<int32_t>(k);
  }
}

void check_inputs(const at::Tensor& points, const c10::optional<at::Tensor>& batch_idx) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) >= 3, "voxelize: points must be (N, C>=3), got ", points.sizes());
  TORCH_CHECK(points.scalar_type() == at::kFloat, "voxelize: points must be float32, got ", points.scalar_type());
  TORCH_CHECK(points.size(0) < INT32_MAX, "voxelize: at most 2^31 - 2 points, got ", points.size(0));
  if (batch_idx.has_value()) {
    const at::Tensor& b = *batch_idx;
    TORCH_CHECK(b.dim() == 1 && b.size(0) == points.size(0), "voxelize: batch_idx must be (N,) = (",
                points.size(0), ",), got ", b.sizes());
    TORCH_CHECK(b.scalar_type() == at::kLong, "voxelize: batch_idx must be int64, got ", b.scalar_type());
  }
}

// Packed 8-byte items when every key stays below the 32-bit sentinel.
bool fits_u32(const VoxelGrid& g) { return g.cells * g.batch_size < int64_t(PackedItem::kSkip); }

template <typename Item>
std::tuple<at::Tensor, at::Tensor, at::Tensor> hard_impl(const at::Tensor& pts, const int64_t* bidx,
                                                         const VoxelGrid& g, int64_t max_points,
                                                         int64_t max_voxels) {
  const int64_t n = pts.size(0), ncol = pts.size(1);
  const float* p = pts.data_ptr<float>();
  Grouping<Item> gr;
  group_points<Item>(p, n, ncol, bidx, g, max_voxels, nullptr, gr);
  const int64_t nv = gr.num_voxels;
  at::Tensor voxels = at::empty({nv, max_points, ncol}, pts.options());
  at::Tensor coords = at::empty({nv, 4}, pts.options().dtype(at::kInt));
  at::Tensor num = at::empty({nv}, pts.options().dtype(at::kInt));
  float* vo = voxels.data_ptr<float>();
  int32_t* co = coords.data_ptr<int32_t>();
  int32_t* nu = num.data_ptr<int32_t>();
  // Output in voxel order: the big (V, P, C) tensor is written sequentially, padding included, so
  // it is never zero-filled separately.
  for_chunks(nv, num_chunks(nv), [&](int64_t, int64_t b, int64_t e) {
    switch (ncol) {
      case 4: fill_voxels<4>(b, e, gr, p, ncol, max_points, g, vo, co, nu); break;
      case 5: fill_voxels<5>(b, e, gr, p, ncol, max_points, g, vo, co, nu); break;
      default: fill_voxels<0>(b, e, gr, p, ncol, max_points, g, vo, co, nu); break;
    }
  });
  return {voxels, coords, num};
}

template <typename Item>
std::tuple<at::Tensor, at::Tensor, at::Tensor> dynamic_impl(const at::Tensor& pts, const int64_t* bidx,
                                                            const VoxelGrid& g) {
  const int64_t n = pts.size(0), ncol = pts.size(1);
  at::Tensor point_coords = at::empty({n, 4}, pts.options().dtype(at::kInt));
  Grouping<Item> gr;
  group_points<Item>(pts.data_ptr<float>(), n, ncol, bidx, g, -1, point_coords.data_ptr<int32_t>(), gr);
  const int64_t nv = gr.num_voxels;  // == num_groups: nothing is cut
  at::Tensor coords = at::empty({nv, 4}, pts.options().dtype(at::kInt));
  at::Tensor p2v = at::empty({n}, pts.options().dtype(at::kLong));
  int32_t* co = coords.data_ptr<int32_t>();
  int64_t* pv = p2v.data_ptr<int64_t>();
  const int32_t* gs = gr.group_start;
  const int32_t* gv = gr.group_voxel;
  const Item* sorted = gr.sorted;
  const int32_t* pcs = point_coords.data_ptr<int32_t>();
  for_chunks(n, 1, [&](int64_t, int64_t b, int64_t e) {  // light passes: one thread (see group_points)
    for (int64_t i = b; i < e; ++i) {
      if (pcs[4 * i] < 0) pv[i] = -1;  // dropped point (kept points have b >= 0)
    }
  });
  const Decoder<Item> decode(g);
  for_chunks(gr.num_groups, 1, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t v = gv[r];
      for (int64_t j = gs[r]; j < gs[r + 1]; ++j) pv[sorted[j].idx()] = v;
      decode(sorted[gs[r]].key(), co + 4 * v);
    }
  });
  return {point_coords, coords, p2v};
}

// One sample takes the one-thread hash path (hash_hard_impl) unless it is big enough for the parallel
// sort path to gain from more threads (>= 2^19 points and more than one thread).
bool use_hash_path(int64_t n) { return n < (INT64_C(1) << 19) || at::get_num_threads() == 1; }

std::tuple<at::Tensor, at::Tensor, at::Tensor> voxelize_hard_cpu(
    const at::Tensor& points, const c10::optional<at::Tensor>& batch_idx, at::ArrayRef<double> voxel_size,
    at::ArrayRef<double> pc_range, at::IntArrayRef grid_size, int64_t batch_size, int64_t max_points_per_voxel,
    int64_t max_voxels) {
  check_inputs(points, batch_idx);
  TORCH_CHECK(max_points_per_voxel >= 1, "voxelize_hard: max_points_per_voxel must be >= 1");
  TORCH_CHECK(max_voxels >= 0, "voxelize_hard: max_voxels must be >= 0");
  const VoxelGrid g = make_grid(voxel_size.vec(), pc_range.vec(), grid_size.vec(), batch_size);
  const at::Tensor pts = points.contiguous();
  at::Tensor b;
  if (batch_idx.has_value()) b = batch_idx->contiguous();
  const int64_t* bp = b.defined() ? b.data_ptr<int64_t>() : nullptr;
  if (bp == nullptr && use_hash_path(pts.size(0))) {
    if (fits_u32(g)) return hash_hard_impl<Slot32>(pts, g, max_points_per_voxel, max_voxels);
    return hash_hard_impl<Slot64>(pts, g, max_points_per_voxel, max_voxels);
  }
  if (fits_u32(g)) return hard_impl<PackedItem>(pts, bp, g, max_points_per_voxel, max_voxels);
  return hard_impl<WideItem>(pts, bp, g, max_points_per_voxel, max_voxels);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> voxelize_dynamic_cpu(
    const at::Tensor& points, const c10::optional<at::Tensor>& batch_idx, at::ArrayRef<double> voxel_size,
    at::ArrayRef<double> pc_range, at::IntArrayRef grid_size, int64_t batch_size) {
  check_inputs(points, batch_idx);
  const VoxelGrid g = make_grid(voxel_size.vec(), pc_range.vec(), grid_size.vec(), batch_size);
  const at::Tensor pts = points.contiguous();
  at::Tensor b;
  if (batch_idx.has_value()) b = batch_idx->contiguous();
  const int64_t* bp = b.defined() ? b.data_ptr<int64_t>() : nullptr;
  if (fits_u32(g)) return dynamic_impl<PackedItem>(pts, bp, g);
  return dynamic_impl<WideItem>(pts, bp, g);
}

}  // namespace

TORCH_LIBRARY_IMPL(pc3d, CPU, m) {
  m.impl("voxelize_hard", &voxelize_hard_cpu);
  m.impl("voxelize_dynamic", &voxelize_dynamic_cpu);
}

}  // namespace voxelize
}  // namespace pc3d
