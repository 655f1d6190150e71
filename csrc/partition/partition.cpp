// Schemas of the window partitioners (FlatFormer flattened windows, DSVT rotated sets, ScatterFormer
// window segments) and of scattered linear attention. Shapes here are in (x, y[, z]) order, as in the
// papers' formulas; the Python face (pc3d/ops/partition.py) converts from pc3d's (D, H, W) order.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(pc3d, m) {
  // -> (indices [G_total, G] int64, inverse [V] int64, group_batch [G_total] int64, padding [G_total, G] bool)
  // last_group: 0 fills a short last group with the previous group's voxels (unmasked, the official
  // FlatFormer), 1 repeats the group's own voxels (masked); partition_keys.h.
  m.def("flat_window_partition(Tensor coords, int[] sparse_shape_xyz, int[] window_shape_xy, int group_size, "
        "int axis, bool shift, int last_group=0) -> (Tensor, Tensor, Tensor, Tensor)");
  // -> (indices [2, S_total, tau] int64, padding [2, S_total, tau] bool, set_window [S_total] int64)
  m.def("rotated_set_partition(Tensor coords, int[] sparse_shape_xyz, int[] window_shape_xyz, "
        "int[] shift_xyz, int set_size) -> (Tensor, Tensor, Tensor)");
  // -> (order [V] int64, offsets [W] int64, counts [W] int64, window_ids [W] int64)
  m.def("sort_by_window(Tensor coords, int[] sparse_shape_xyz, int[] window_shape_xyz, int[] shift_xyz) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
  // -> (out [N, h, dv], kv [W, h, d, dv], ksum [W, h, d])
  m.def("scattered_linear_attention(Tensor q, Tensor k, Tensor v, Tensor offsets, Tensor counts, float eps) "
        "-> (Tensor, Tensor, Tensor)");
  // -> (grad_q, grad_k, grad_v)
  m.def("scattered_linear_attention_backward(Tensor grad_out, Tensor? grad_kv, Tensor? grad_ksum, Tensor q, "
        "Tensor k, Tensor v, Tensor offsets, Tensor counts, Tensor kv, Tensor ksum, float eps) "
        "-> (Tensor, Tensor, Tensor)");
}
