"""sort_by_window and scattered_linear_attention against index_add_-based references; gradcheck."""
import pytest
import torch

from pc3d.ops import scattered_linear_attention, sort_by_window
from tests.reference.partition_ref import random_coords, scattered_linear_attention_ref, sort_by_window_ref


def segments(gen, W, max_rows, gaps=False):
    """offsets, counts (W,) int64 of ascending disjoint windows; total rows N (with gaps when asked)."""
    counts = torch.randint(1, max_rows + 1, (W,), generator=gen)
    gap = torch.randint(0, 3, (W,), generator=gen) if gaps else torch.zeros(W, dtype=torch.int64)
    offsets = torch.cumsum(counts + gap, 0) - counts
    return offsets, counts, int((offsets + counts)[-1]) + (2 if gaps else 0)


@pytest.mark.parametrize("seed", range(4))
def test_sort_by_window_matches_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    shape = (2, 80, 90)
    coords = random_coords(gen, torch.randint(1, 3000, (int(torch.randint(1, 5, (1,), generator=gen)),),
                                              generator=gen).tolist(), shape)
    for window, shift in (((2, 12, 12), (0, 0, 0)), ((1, 12, 12), (1, 6, 6)), ((2, 7, 5), (2, 7, 5))):
        out = sort_by_window(coords, shape, window, shift)
        for a, b in zip(out, sort_by_window_ref(coords, shape, window, shift)):
            assert torch.equal(a, b)
    big = random_coords(gen, [100_000], (1, 468, 468))
    for a, b in zip(sort_by_window(big, (1, 468, 468), 12), sort_by_window_ref(big, (1, 468, 468), (1, 12, 12))):
        assert torch.equal(a, b)


def test_sort_by_window_edges():
    empty = sort_by_window(torch.zeros(0, 4, dtype=torch.int32), (1, 8, 8), 4)
    assert all(t.numel() == 0 for t in empty)
    one = sort_by_window(torch.tensor([[3, 0, 7, 7]], dtype=torch.int32), (1, 8, 8), 4, shift=True)
    assert one.order.tolist() == [0] and one.counts.tolist() == [1]
    # shifted window across the border: (7 + 2) // 4 = 2, M = ceil(8 / 4) + 1 = 3 per axis, Mz = 2
    assert one.window_ids.tolist() == [3 * 18 + 2 * 6 + 2 * 2]


def assert_close_rel(a, b, rel, msg=None):
    """Element-wise rtol plus an absolute slack of ``rel`` times the tensor's scale (errors of float
    sums scale with the largest terms, not with each element). Also used by test_cuda_ops.py."""
    torch.testing.assert_close(a, b, rtol=rel, atol=rel * float(b.abs().max()), msg=msg)


# d = 1 only in float64: there grad q = KV*eps/(q*s + eps)^2 is pure cancellation, which float32 cannot
# resolve (the reference and the op are both ~1e-3 off a float64 answer there).
@pytest.mark.parametrize("dtype, h, d, dv", [(torch.float32, 4, 32, 32), (torch.float32, 3, 5, 7),
                                             (torch.float64, 4, 32, 32), (torch.float64, 3, 5, 7),
                                             (torch.float64, 1, 1, 1)])
def test_forward_backward_match_index_add_reference(dtype, h, d, dv):
    gen = torch.Generator().manual_seed(h * 100 + d)
    offsets, counts, N = segments(gen, 40, 60, gaps=True)
    q, k, v = (torch.randn(N, h, x, generator=gen, dtype=dtype) for x in (d, d, dv))
    g = torch.randn(N, h, dv, generator=gen, dtype=dtype)
    ins = [t.clone().requires_grad_() for t in (q, k, v)]
    refs = [t.clone().requires_grad_() for t in (q, k, v)]
    out = scattered_linear_attention(*ins, offsets, counts)
    ref = scattered_linear_attention_ref(*refs, offsets, counts)
    rel = 1e-5 if dtype == torch.float32 else 1e-11
    assert_close_rel(out, ref, rel)
    out.backward(g)
    ref.backward(g)
    for a, b in zip(ins, refs):
        assert_close_rel(a.grad, b.grad, rel)


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(0)
    offsets = torch.tensor([0, 3, 4, 6])
    counts = torch.tensor([3, 1, 2, 2])
    # row 8 is outside every window; the values keep ReLU inputs away from 0 (kink)
    def rand(*s):
        x = torch.randn(*s, generator=gen, dtype=torch.float64)
        return (x + 0.2 * torch.sign(x)).requires_grad_()
    q, k, v = rand(9, 2, 2), rand(9, 2, 2), rand(9, 2, 3)
    fn = lambda q, k, v: scattered_linear_attention(q, k, v, offsets, counts)
    assert torch.autograd.gradcheck(fn, (q, k, v))
    # the window states are outputs too: their gradients flow through the compiled backward
    full = lambda q, k, v: torch.ops.pc3d.scattered_linear_attention(q, k, v, offsets, counts, 1e-6)
    assert torch.autograd.gradcheck(full, (q, k, v))


def test_rows_outside_windows_are_zero_and_backward_is_deterministic():
    gen = torch.Generator().manual_seed(1)
    offsets, counts, N = segments(gen, 300, 150, gaps=True)
    covered = torch.zeros(N, dtype=torch.bool)
    for o, c in zip(offsets.tolist(), counts.tolist()):
        covered[o:o + c] = True
    q, k, v = (torch.randn(N, 4, 32, generator=gen).requires_grad_() for _ in range(3))
    out = scattered_linear_attention(q, k, v, offsets, counts)
    assert (out[~covered] == 0).all() and (out[covered] != 0).any()
    grads = []
    for threads in (1, 2, 1):
        torch.set_num_threads(threads)
        grads.append(torch.autograd.grad(scattered_linear_attention(q, k, v, offsets, counts).square().sum(), (q, k, v)))
    torch.set_num_threads(2)
    for gs in grads[1:]:
        assert all(torch.equal(a, b) for a, b in zip(gs, grads[0]))


def test_empty_inputs():
    z = torch.zeros(0, 2, 4)
    out = scattered_linear_attention(z, z, z, torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    assert out.shape == (0, 2, 4)


def test_end_to_end_with_sort_by_window():
    gen = torch.Generator().manual_seed(3)
    coords = random_coords(gen, [700, 400], (1, 50, 50))
    seg = sort_by_window(coords, (1, 50, 50), 12, shift=True)
    x = torch.randn(coords.shape[0], 2, 8, generator=gen)[seg.order]
    out = scattered_linear_attention(x, x, x, seg.offsets, seg.counts)
    assert_close_rel(out, scattered_linear_attention_ref(x, x, x, seg.offsets, seg.counts), 1e-5)


@pytest.mark.parametrize("change, match", [
    (dict(q=torch.zeros(5, 4)), r"q must be a \(N, h, d\) tensor, got torch.Size\(\[5, 4\]\)"),
    (dict(k=torch.zeros(5, 2, 3)), r"k must have q's shape \(5, 2, 4\), got \(5, 2, 3\)"),
    (dict(v=torch.zeros(4, 2, 4)), r"v must have shape \(N, h, dv\)"),
    (dict(q=torch.zeros(5, 2, 4, dtype=torch.int32)), "q must be float32 or float64"),
    (dict(v=torch.zeros(5, 2, 4, dtype=torch.float64)), "v must match q's dtype"),
    (dict(offsets=torch.tensor([0, 2], dtype=torch.int32)), "offsets must be a \\(W,\\) int64 tensor"),
    (dict(counts=torch.tensor([2, 4])), r"rows inside \[0, N = 5\)"),
    (dict(offsets=torch.tensor([0, 1])), "ascending and disjoint"),
    (dict(counts=torch.tensor([2])), "must have one shape"),
    (dict(eps=0.0), "eps must be a positive float"),
])
def test_bad_input(change, match):
    args = dict(q=torch.zeros(5, 2, 4), k=torch.zeros(5, 2, 4), v=torch.zeros(5, 2, 4),
                offsets=torch.tensor([0, 2]), counts=torch.tensor([2, 3]))
    args.update(change)
    with pytest.raises(ValueError, match=match):
        scattered_linear_attention(**args)


def test_sort_by_window_bad_input():
    with pytest.raises(ValueError, match=r"window_shape must be positive"):
        sort_by_window(torch.zeros(1, 4, dtype=torch.int32), (1, 8, 8), (0, 4))
    with pytest.raises(ValueError, match=r"outside sparse_shape"):
        sort_by_window(torch.tensor([[0, 0, 9, 0]], dtype=torch.int32), (1, 8, 8), 4)


def test_opcheck():
    gen = torch.Generator().manual_seed(2)
    offsets, counts, N = segments(gen, 5, 6)
    q, k, v = (torch.randn(N, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    torch.library.opcheck(torch.ops.pc3d.scattered_linear_attention.default, (q, k, v, offsets, counts, 1e-6))
    coords = random_coords(gen, [20, 9], (1, 16, 16))
    torch.library.opcheck(torch.ops.pc3d.sort_by_window.default, (coords, [16, 16, 1], [5, 5, 1], [2, 2, 0]))
