// Schemas of the voxelizers. Call them through pc3d.ops.voxelize_hard / voxelize_dynamic, which
// validate the inputs and derive grid_size (W, H, D) and batch_size.
//
// points: (N, C) float32, x y z first. batch_idx: (N,) int64 sample of each point in [0, batch_size),
// or None for one sample. Output voxels are grouped by sample (ascending), in first-seen order inside
// a sample; the points of a voxel keep their input order.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(pc3d, m) {
  // -> voxels (V, P, C) float32 zero-padded, coords (V, 4) int32 (b, z, y, x), num_points (V,) int32.
  m.def(
      "voxelize_hard(Tensor points, Tensor? batch_idx, float[] voxel_size, float[] pc_range, "
      "int[] grid_size, int batch_size, int max_points_per_voxel, int max_voxels) "
      "-> (Tensor, Tensor, Tensor)");
  // -> point_coords (N, 4) int32 (-1 rows when dropped), coords (V, 4) int32, point2voxel (N,) int64.
  m.def(
      "voxelize_dynamic(Tensor points, Tensor? batch_idx, float[] voxel_size, float[] pc_range, "
      "int[] grid_size, int batch_size) -> (Tensor, Tensor, Tensor)");
}
