// Quantisation of points to voxel cells, a block of points at a time: shared by the sort path
// (voxelize_cpu.cpp) and the one-sample hash path (hash_hard_cpu.h) of the CPU voxelizers.
#pragma once

#include <algorithm>
#include <cstdint>

#include "voxelize/voxelize_common.h"

namespace pc3d {
namespace voxelize {

// Points per block of the key pass: the block's x, y, z columns (3 KB) and cells (3 KB) stay in L1.
constexpr int64_t kKeyBlock = 256;
// Cell index along one axis of len points with coordinate v[j], or -1 when the point is outside the
// grid or NaN/inf (see point_cell: q >= 0 <=> floor(q) >= 0; the 2^31 bound keeps the int conversion
// defined). Contiguous input and no branches, so the compiler vectorizes it: the float division, the
// bulk of the key pass, then runs 4 (SSE2) lanes at a time with the same IEEE result per lane.
inline void axis_cells(const float* v, int64_t len, float lo, float size, int32_t dim, int32_t* out) {
  for (int64_t j = 0; j < len; ++j) {
    const float q = (v[j] - lo) / size;
    const bool in = (q >= 0.f) & (q < 2147483648.f);
    const int32_t c = static_cast<int32_t>(in ? q : 0.f);
    out[j] = (in & (c < dim)) ? c : -1;
  }
}

// Cells of points [b0, b0 + len) (len <= kKeyBlock) of the (N, ncol) rows: x, y, z are copied out into
// contiguous columns, then quantised column by column (axis_cells). cell[d][j] is -1 when point b0 + j is
// outside the grid along axis d.
inline void block_cells(const float* pts, int64_t b0, int64_t len, int64_t ncol, const VoxelGrid& g,
                        float (&col)[3][kKeyBlock], int32_t (&cell)[3][kKeyBlock]) {
  const float* p = pts + b0 * ncol;
  for (int64_t j = 0; j < len; ++j) {
    col[0][j] = p[j * ncol];
    col[1][j] = p[j * ncol + 1];
    col[2][j] = p[j * ncol + 2];
  }
  for (int d = 0; d < 3; ++d) {
    axis_cells(col[d], len, g.lo[d], g.size[d], static_cast<int32_t>(g.dims[d]), cell[d]);
  }
}

}  // namespace voxelize
}  // namespace pc3d
