// Point -> voxel quantisation shared by the CPU and CUDA voxelizers, so both drop and bin exactly
// the same points (the tests compare them to a float32 PyTorch reference bit for bit).
#pragma once

#include <cstdint>
#include <vector>

#include <c10/util/Exception.h>

#ifdef __CUDACC__
#define PC3D_HD __host__ __device__ __forceinline__
#else
#define PC3D_HD inline
#endif

namespace pc3d {
namespace voxelize {

// The voxel grid of one sample plus the batch size. dims are (W, H, D) = cells along x, y, z.
// A voxel's linear key is ((b * D + z) * H + y) * W + x; keys are < cells * batch_size.
struct VoxelGrid {
  float lo[3];
  float size[3];
  int64_t dims[3];
  int64_t cells;       // D * H * W
  int64_t batch_size;  // B
};

// Builds and checks the grid. The Python face validates first; these checks only guard the
// kernel's indexing (a grid whose keys overflow int64 would make every index below wrong).
inline VoxelGrid make_grid(const std::vector<double>& voxel_size, const std::vector<double>& pc_range,
                           const std::vector<int64_t>& grid_size, int64_t batch_size) {
  TORCH_CHECK(voxel_size.size() == 3, "voxelize: voxel_size must have 3 values, got ", voxel_size.size());
  TORCH_CHECK(pc_range.size() == 6, "voxelize: pc_range must have 6 values, got ", pc_range.size());
  TORCH_CHECK(grid_size.size() == 3, "voxelize: grid_size must have 3 values (W, H, D), got ", grid_size.size());
  TORCH_CHECK(batch_size >= 1, "voxelize: batch_size must be >= 1, got ", batch_size);
  VoxelGrid g;
  int64_t cells = 1;
  for (int d = 0; d < 3; ++d) {
    g.lo[d] = static_cast<float>(pc_range[d]);
    g.size[d] = static_cast<float>(voxel_size[d]);
    TORCH_CHECK(g.size[d] > 0.f, "voxelize: voxel_size[", d, "] must be > 0");
    TORCH_CHECK(grid_size[d] >= 1 && grid_size[d] <= INT32_MAX, "voxelize: grid_size[", d, "] = ",
                grid_size[d], " outside [1, 2^31 - 1]");
    g.dims[d] = grid_size[d];
    TORCH_CHECK(cells <= (INT64_C(1) << 62) / grid_size[d], "voxelize: voxel grid overflows int64");
    cells *= grid_size[d];
  }
  TORCH_CHECK(batch_size <= (INT64_C(1) << 62) / cells, "voxelize: voxel grid x batch overflows int64");
  g.cells = cells;
  g.batch_size = batch_size;
  return g;
}

// Voxel coordinate of point p along each axis, or false when the point is outside [lo, lo + dims * size)
// or has a NaN/inf coordinate (every comparison with NaN is false, so NaN lands in the `return false`).
// The quotient q is formed in float32 as (p - lo) / size (no reciprocal multiply), like spconv and
// mmdet3d. floor(q) >= 0 exactly when q >= 0, and for q >= 0 truncation is floor, so no floorf call.
PC3D_HD bool point_cell(const float* p, const VoxelGrid& g, int64_t* cxyz) {
#ifdef __CUDACC__
#pragma unroll
#endif
  for (int d = 0; d < 3; ++d) {
    const float q = (p[d] - g.lo[d]) / g.size[d];
    // 2^31 bound first: converting a larger float to an integer would be undefined behaviour.
    if (!(q >= 0.f && q < 2147483648.f)) return false;
    const int64_t ic = static_cast<int64_t>(static_cast<int32_t>(q));
    if (ic >= g.dims[d]) return false;
    cxyz[d] = ic;
  }
  return true;
}

PC3D_HD int64_t cell_key(const VoxelGrid& g, int64_t b, const int64_t* cxyz) {
  return ((b * g.dims[2] + cxyz[2]) * g.dims[1] + cxyz[1]) * g.dims[0] + cxyz[0];
}

// Writes (b, z, y, x) of a linear key.
PC3D_HD void decode_key(const VoxelGrid& g, int64_t key, int32_t* out) {
  const int64_t x = key % g.dims[0];
  key /= g.dims[0];
  const int64_t y = key % g.dims[1];
  key /= g.dims[1];
  const int64_t z = key % g.dims[2];
  out[0] = static_cast<int32_t>(key / g.dims[2]);
  out[1] = static_cast<int32_t>(z);
  out[2] = static_cast<int32_t>(y);
  out[3] = static_cast<int32_t>(x);
}

// Number of bits needed to hold every value in [0, n].
PC3D_HD int bits_for(uint64_t n) {
  int b = 0;
  while (n) {
    ++b;
    n >>= 1;
  }
  return b;
}

}  // namespace voxelize
}  // namespace pc3d
