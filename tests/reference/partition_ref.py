"""Plain-PyTorch references of the partition ops (DESIGN.md "Exact keys"), written for clarity.

Shapes follow pc3d.ops.partition: coords (V, 4) int32 [b, z, y, x], sparse_shape (D, H, W),
window shapes and shifts in (z, y, x) order.
"""
import torch


def random_coords(gen: torch.Generator, sizes, dhw, dense=None):
    """(V, 4) int32 unique voxels: sizes[b] voxels for sample b, uniformly in ``dhw`` or, when ``dense``
    = (z0, y0, x0, z1, y1, x1) is given, inside that box. Rows are shuffled across samples."""
    rows = []
    D, H, W = dhw
    z0, y0, x0, z1, y1, x1 = dense if dense is not None else (0, 0, 0, D, H, W)
    dz, dy, dx = z1 - z0, y1 - y0, x1 - x0
    for b, n in enumerate(sizes):
        lin = torch.randperm(dz * dy * dx, generator=gen)[:n]
        z, y, x = lin // (dy * dx) + z0, (lin // dx) % dy + y0, lin % dx + x0
        rows.append(torch.stack([torch.full_like(lin, b), z, y, x], 1))
    c = torch.cat(rows) if rows else torch.zeros(0, 4, dtype=torch.int64)
    return c[torch.randperm(c.shape[0], generator=gen)].to(torch.int32)


def flat_key(coords, sparse_shape, window_shape, axis, shift, with_batch_term=False):
    """FlatFormer's key_x / key_y per voxel (int64); ``with_batch_term`` adds DESIGN's b*Sx*Sy*10."""
    Sy, Sx = sparse_shape[-2:]
    wy, wx = window_shape
    b, _, y, x = coords.long().unbind(1)
    if shift:
        x, y = x + wx // 2, y + wy // 2
    x1, y1, x2, y2 = x // wx, y // wy, x % wx, y % wy
    n2, m2 = 2 * wx, 2 * wy
    n1, m1 = 2 * (-(-Sx // wx) + 1), 2 * (-(-Sy // wy) + 1)
    sgn = lambda t: 1 - 2 * (t % 2)  # (-1)^t
    if axis == "x":
        key = (n1 * y1 + sgn(y1) * x1) * n2 * m2 + sgn(y1) * (m2 * x2 + sgn(x2) * y2)
    else:
        key = (m1 * x1 + sgn(x1) * y1) * m2 * n2 + sgn(x1) * (n2 * y2 + sgn(y2) * x2)
    return key + b * Sx * Sy * 10 if with_batch_term else key


def flat_window_ref(coords, sparse_shape, window_shape, group_size, axis="x", shift=False, last_group="previous"):
    """(indices, inverse, group_batch, padding_mask) as pc3d.ops.flat_window_partition documents."""
    G = group_size
    key = flat_key(coords, sparse_shape, window_shape, axis, shift)
    b = coords[:, 0].long()
    order = torch.sort(key, stable=True).indices
    order = order[torch.sort(b[order], stable=True).indices]  # samples first, key inside a sample
    idx, pad, own, gb = [], [], [], []
    start = 0
    for bb, n in zip(*torch.unique_consecutive(b[order], return_counts=True)):
        n = int(n)
        g = -(-n // G)
        pos = torch.arange(g * G)
        last0 = (g - 1) * G
        real_last = n - last0
        if last_group == "previous" and g > 1:  # the previous group's slot j, a real key
            filled = pos - G
            pad.append(torch.zeros(g, G, dtype=torch.bool))
        else:  # cycle over the last group's own voxels, masked
            filled = last0 + (pos - last0) % real_last
            pad.append((pos >= n).view(g, G))
        idx.append(order[start + torch.where(pos < n, pos, filled)].view(g, G))
        own.append((pos < n).view(g, G))
        gb.append(torch.full((g,), int(bb)))
        start += n
    if not idx:
        e = torch.zeros(0, G, dtype=torch.int64)
        return e, torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), e.bool()
    indices, padding, own = torch.cat(idx), torch.cat(pad), torch.cat(own).flatten()
    inverse = torch.empty(coords.shape[0], dtype=torch.int64)
    inverse[indices.flatten()[own]] = torch.arange(own.numel())[own]  # each voxel's slot in its own group
    return indices, inverse, torch.cat(gb), padding


def _windows(coords, sparse_shape, window_shape, shift):
    """Per voxel (window id, in-window ix, iy, iz) and the window volume, DESIGN's DSVT formulas."""
    D, H, W = sparse_shape
    Wz, Wy, Wx = window_shape
    dz, dy, dx = shift
    b, z, y, x = coords.long().unbind(1)
    x, y, z = x + dx, y + dy, z + dz
    Mx, My, Mz = -(-W // Wx) + 1, -(-H // Wy) + 1, -(-D // Wz) + 1
    win = b * Mx * My * Mz + (x // Wx) * My * Mz + (y // Wy) * Mz + z // Wz
    return win, x % Wx, y % Wy, z % Wz


def rotated_set_ref(coords, sparse_shape, window_shape, set_size, shift=(0, 0, 0)):
    """(indices (2, Ns, tau), padding (2, Ns, tau), set_window (Ns,)): per-window rank via sort + gather."""
    tau = set_size
    Wz, Wy, Wx = window_shape
    win, ix, iy, iz = _windows(coords, sparse_shape, window_shape, shift)
    keys = (iy * Wx * Wz + ix * Wz + iz, ix * Wy * Wz + iy * Wz + iz)
    idx_out, pad_out = [], []
    for key in keys:
        perm = torch.sort(win * (Wx * Wy * Wz) + key, stable=True).indices
        wins, n = torch.unique_consecutive(win[perm], return_counts=True)
        start = torch.cumsum(n, 0) - n
        S = -(-n // tau)
        set_w = torch.repeat_interleave(torch.arange(wins.numel()), S)
        k = torch.arange(set_w.numel()) - torch.repeat_interleave(torch.cumsum(S, 0) - S, S)
        j = torch.arange(tau)
        rank = ((k[:, None] * tau + j) * n[set_w, None]) // (S[set_w, None] * tau)
        idx_out.append(perm[start[set_w, None] + rank])
        pad = torch.zeros_like(rank, dtype=torch.bool)
        pad[:, 1:] = rank[:, 1:] == rank[:, :-1]
        pad_out.append(pad)
    return torch.stack(idx_out), torch.stack(pad_out), wins[set_w]


def sort_by_window_ref(coords, sparse_shape, window_shape, shift=(0, 0, 0)):
    """(order, offsets, counts, window_ids): stable argsort by window id."""
    win = _windows(coords, sparse_shape, window_shape, shift)[0]
    order = torch.sort(win, stable=True).indices
    ids, counts = torch.unique_consecutive(win[order], return_counts=True)
    return order, torch.cumsum(counts, 0) - counts, counts, ids


def scattered_linear_attention_ref(q, k, v, offsets, counts, eps=1e-6):
    """index_add_-based ReLU linear attention per window (materialises (N, h, d, dv) outer products)."""
    N, h, d = q.shape
    W = offsets.numel()
    rows = torch.cat([torch.arange(int(o), int(o) + int(c)) for o, c in zip(offsets, counts)]) if W else \
        torch.zeros(0, dtype=torch.int64)
    win = torch.repeat_interleave(torch.arange(W), counts)
    fq, fk, vv = torch.relu(q[rows]), torch.relu(k[rows]), v[rows]
    kv = q.new_zeros(W, h, d, v.shape[2]).index_add_(0, win, fk.unsqueeze(-1) * vv.unsqueeze(-2))
    s = q.new_zeros(W, h, d).index_add_(0, win, fk)
    num = torch.einsum("nhd,nhde->nhe", fq, kv[win])
    den = (fq * s[win]).sum(-1, keepdim=True) + eps
    return v.new_zeros(N, h, v.shape[2]).index_copy(0, rows, num / den)


def assert_flat_equals_ref(coords, shape, window, G, axis, shift, last_group="previous"):
    """pc3d's flat_window_partition equals flat_window_ref field by field (bit-exact)."""
    from pc3d.ops import flat_window_partition

    out = flat_window_partition(coords, shape, window, G, axis=axis, shift=shift, last_group=last_group)
    ref = flat_window_ref(coords, shape, window, G, axis=axis, shift=shift, last_group=last_group)
    for name, a, b in zip(out._fields, out, ref):
        assert torch.equal(a, b), name


def assert_sets_equal_ref(coords, shape, window, tau, shift):
    """pc3d's rotated_set_partition equals rotated_set_ref (indices, padding mask, set windows)."""
    from pc3d.ops import rotated_set_partition

    out = rotated_set_partition(coords, shape, window, tau, shift=shift)
    idx, pad, set_window = rotated_set_ref(coords, shape, window, tau, shift)
    assert torch.equal(out.indices, idx) and torch.equal(out.padding_mask, pad)
    assert torch.equal(out.set_window, set_window)
