"""Fake (meta) kernels and autograd of the partition ops, so they work under torch.compile/opcheck.

The partitions have data-dependent output sizes (groups, sets, windows): their fakes use dynamic sizes.
Scattered linear attention's backward is the compiled ``pc3d::scattered_linear_attention_backward``.
"""
import torch


@torch.library.register_fake("pc3d::flat_window_partition")
def _flat_fake(coords, sparse_shape_xyz, window_shape_xy, group_size, axis, shift, last_group=0):
    ng = torch.library.get_ctx().new_dynamic_size()
    i64 = dict(dtype=torch.int64, device=coords.device)
    return (coords.new_empty((ng, group_size), **i64), coords.new_empty((coords.shape[0],), **i64),
            coords.new_empty((ng,), **i64), coords.new_empty((ng, group_size), dtype=torch.bool))


@torch.library.register_fake("pc3d::rotated_set_partition")
def _sets_fake(coords, sparse_shape_xyz, window_shape_xyz, shift_xyz, set_size):
    ns = torch.library.get_ctx().new_dynamic_size()
    return (coords.new_empty((2, ns, set_size), dtype=torch.int64),
            coords.new_empty((2, ns, set_size), dtype=torch.bool), coords.new_empty((ns,), dtype=torch.int64))


@torch.library.register_fake("pc3d::sort_by_window")
def _sort_fake(coords, sparse_shape_xyz, window_shape_xyz, shift_xyz):
    nw = torch.library.get_ctx().new_dynamic_size()
    i64 = dict(dtype=torch.int64)
    return (coords.new_empty((coords.shape[0],), **i64), coords.new_empty((nw,), **i64),
            coords.new_empty((nw,), **i64), coords.new_empty((nw,), **i64))


@torch.library.register_fake("pc3d::scattered_linear_attention")
def _sla_fake(q, k, v, offsets, counts, eps):
    n, h, d = q.shape
    w = offsets.shape[0]
    return v.new_empty((n, h, v.shape[2])), v.new_empty((w, h, d, v.shape[2])), v.new_empty((w, h, d))


@torch.library.register_fake("pc3d::scattered_linear_attention_backward")
def _sla_bwd_fake(grad_out, grad_kv, grad_ksum, q, k, v, offsets, counts, kv, ksum, eps):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _sla_setup_context(ctx, inputs, output):
    q, k, v, offsets, counts, eps = inputs
    _, kv, ksum = output
    ctx.save_for_backward(q, k, v, offsets, counts, kv, ksum)
    ctx.eps = eps


def _sla_backward(ctx, grad_out, grad_kv, grad_ksum):
    q, k, v, offsets, counts, kv, ksum = ctx.saved_tensors
    if grad_out is None:
        grad_out = torch.zeros_like(v[:, :, :])
    gq, gk, gv = torch.ops.pc3d.scattered_linear_attention_backward(
        grad_out, grad_kv, grad_ksum, q, k, v, offsets, counts, kv, ksum, ctx.eps)
    return gq, gk, gv, None, None, None


torch.library.register_autograd("pc3d::scattered_linear_attention", _sla_backward,
                                setup_context=_sla_setup_context)
