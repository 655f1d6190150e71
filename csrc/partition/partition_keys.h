// Sort keys of the window partitioners, shared by the CPU and CUDA kernels so both agree bit for bit.
// Formulas: ../shared/DESIGN.md, "Exact keys". Coordinates are pc3d's (b, z, y, x) int32 rows.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define PC3D_HD __host__ __device__ __forceinline__
#else
#define PC3D_HD inline
#endif

namespace pc3d {
namespace partition {

// FlatFormer key of one voxel inside its sample (the b*Sx*Sy*10 term of the papers' key is replaced
// by sorting on (b, key), which equals it whenever that term separates samples and never mixes them).
struct FlatParams {
  int64_t wx, wy;      // window
  int64_t shx, shy;    // shift added to x, y (wx//2, wy//2 when shifted, else 0)
  int64_t n1, m1, n2, m2;
  bool axis_y;         // false: key_x (x-major snake), true: key_y
};

// How flat_window_partition fills a sample's short last group (the op's ``last_group`` argument):
// previous: slot j >= r takes slot j of the sample's previous group, unmasked (the official FlatFormer);
// repeat: slot j >= r repeats slot j % r of the group itself, masked. A one-group sample always repeats.
constexpr int64_t kFlatFillPrevious = 0;
constexpr int64_t kFlatFillRepeat = 1;

// The parameters for a sparse grid (sx, sy) and window (wx, wy): one definition for both kernels.
inline FlatParams make_flat_params(int64_t sx, int64_t sy, int64_t wx, int64_t wy, bool axis_y, bool shift) {
  FlatParams p;
  p.wx = wx;
  p.wy = wy;
  p.shx = shift ? wx / 2 : 0;
  p.shy = shift ? wy / 2 : 0;
  p.n2 = 2 * wx;
  p.m2 = 2 * wy;
  p.n1 = 2 * ((sx + wx - 1) / wx + 1);
  p.m1 = 2 * ((sy + wy - 1) / wy + 1);
  p.axis_y = axis_y;
  return p;
}

// Key from the window (x1, y1) and in-window (x2, y2) coordinates of the shifted voxel.
PC3D_HD int64_t flat_key_parts(int64_t x1, int64_t y1, int64_t x2, int64_t y2, const FlatParams& p) {
  const int64_t sx1 = (x1 & 1) ? -1 : 1, sy1 = (y1 & 1) ? -1 : 1;
  const int64_t sx2 = (x2 & 1) ? -1 : 1, sy2 = (y2 & 1) ? -1 : 1;
  if (!p.axis_y) {
    return (p.n1 * y1 + sy1 * x1) * p.n2 * p.m2 + sy1 * (p.m2 * x2 + sx2 * y2);
  }
  return (p.m1 * x1 + sx1 * y1) * p.m2 * p.n2 + sx1 * (p.n2 * y2 + sy2 * x2);
}

PC3D_HD int64_t flat_key(int64_t x, int64_t y, const FlatParams& p) {
  x += p.shx;
  y += p.shy;
  return flat_key_parts(x / p.wx, y / p.wy, x % p.wx, y % p.wy, p);
}

// DSVT / ScatterFormer windows: c' = c + shift, window = c' // W, in-window = c' % W.
struct WindowParams {
  int64_t W[3];   // window (x, y, z)
  int64_t sh[3];  // shift (x, y, z), 0 <= sh <= W
  int64_t M[3];   // windows per axis: ceil(S / W) + 1
};

PC3D_HD int64_t window_id_parts(int64_t b, int64_t wz, int64_t wy, int64_t wx, const WindowParams& p) {
  return b * p.M[0] * p.M[1] * p.M[2] + wx * p.M[1] * p.M[2] + wy * p.M[2] + wz;
}

PC3D_HD int64_t window_id(int64_t b, int64_t z, int64_t y, int64_t x, const WindowParams& p) {
  return window_id_parts(b, (z + p.sh[2]) / p.W[2], (y + p.sh[1]) / p.W[1], (x + p.sh[0]) / p.W[0], p);
}

// In-window order keys: order 0 is y-major (iy*Wx*Wz + ix*Wz + iz), order 1 x-major (ix*Wy*Wz + iy*Wz + iz).
PC3D_HD int64_t inwindow_key_parts(int64_t iz, int64_t iy, int64_t ix, const WindowParams& p, int order) {
  if (order == 0) return iy * p.W[0] * p.W[2] + ix * p.W[2] + iz;
  return ix * p.W[1] * p.W[2] + iy * p.W[2] + iz;
}

PC3D_HD int64_t inwindow_key(int64_t z, int64_t y, int64_t x, const WindowParams& p, int order) {
  return inwindow_key_parts((z + p.sh[2]) % p.W[2], (y + p.sh[1]) % p.W[1], (x + p.sh[0]) % p.W[0], p, order);
}

// Rank of slot j of set k in a window of n voxels split into S sets of tau slots (DSVT).
PC3D_HD int64_t set_slot_rank(int64_t k, int64_t j, int64_t n, int64_t S, int64_t tau) {
  return ((k * tau + j) * n) / (S * tau);
}

}  // namespace partition
}  // namespace pc3d
