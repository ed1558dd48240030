"""LIF engine: exact equivalence with snntorch, the pure step, and the hand-written backward."""
import copy
import pickle

import pytest
import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import surrogate as snn_surrogate

from snnkit import engine
from snnkit.neurons import (LIF, _chunk_sizes, lif_chunks_backward, lif_chunks_forward, lif_pool_chunk, lif_pool_chunk_grad,
                            lif_sequence, lif_step, spike_max_pool)
from snnkit.surrogate import ATan, FastSigmoid, Triangular, get_surrogate

T, B, C = 30, 6, 20


def _snntorch_run(x, reset, spike_grad, learn=False):
    ref = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism=reset, spike_grad=spike_grad,
                    learn_beta=learn, learn_threshold=learn)
    mem = ref.init_leaky()
    spks, mems = [], []
    for t in range(x.shape[0]):
        s, mem = ref(x[t], mem)
        spks.append(s)
        mems.append(mem)
    return ref, torch.stack(spks), torch.stack(mems)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("ours,theirs", [(ATan(2.0), snn_surrogate.atan(2.0)),
                                         (FastSigmoid(25.0), snn_surrogate.fast_sigmoid(25))])
def test_lif_matches_snntorch_exactly(reset, ours, theirs):
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(T, B, C, generator=gen) * 0.8 + 0.4).requires_grad_()
    w = torch.randn(T, B, C, generator=gen)
    lif = LIF(beta=0.9, threshold=1.0, reset=reset, surrogate=ours, learn_beta=True, learn_threshold=True)
    mems = []
    with torch.no_grad():
        lif.probe = lambda layer, s, m: mems.append(m)
        lif(x)
        lif.probe = None
    spk = lif(x)
    (spk * w).sum().backward()
    grad_ours = x.grad.clone()
    x.grad = None

    ref, spk_ref, mem_ref = _snntorch_run(x, reset, theirs, learn=True)
    (spk_ref * w).sum().backward()

    assert spk.sum() > 50  # the comparison is not vacuous
    assert (spk - spk_ref).abs().max().item() == 0.0
    assert (mems[0] - mem_ref).abs().max().item() == 0.0
    scale = grad_ours.abs().max().item()
    assert scale > 0.1
    assert (grad_ours - x.grad).abs().max().item() <= 1e-5 * scale
    assert lif.beta.grad.item() == pytest.approx(ref.beta.grad.item(), rel=1e-5, abs=1e-4)
    assert lif.threshold.grad.item() == pytest.approx(ref.threshold.grad.item(), rel=1e-5, abs=1e-4)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_sequence_equals_repeated_step_and_its_gradients(reset):
    """The fast whole-sequence function and the pure step agree, values and gradients."""
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(T, B, 3, 4, 4, generator=gen) + 0.5).requires_grad_()
    beta = torch.tensor([0.5, 0.8, 0.95]).reshape(3, 1, 1).requires_grad_()
    thr = torch.tensor([0.7, 1.0, 1.3]).reshape(3, 1, 1).requires_grad_()
    sg = Triangular(1.0)
    spk, mem = lif_sequence(x, beta, thr, sg, reset)
    w = torch.randn_like(spk)
    (spk * w).sum().backward()
    grads = [t.grad.clone() for t in (x, beta, thr)]
    for t_ in (x, beta, thr):
        t_.grad = None
    state, spks, mems = None, [], []
    for t in range(T):
        s, state = lif_step(x[t], state, beta, thr, sg, reset)
        spks.append(s)
        mems.append(state.mem)
    (torch.stack(spks) * w).sum().backward()
    assert torch.equal(spk, torch.stack(spks))
    assert torch.equal(mem, torch.stack(mems).detach())
    for ours, ref in zip(grads, (x.grad, beta.grad, thr.grad)):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert beta.grad.abs().sum() > 0 and thr.grad.abs().sum() > 0


def test_constant_current_equals_repeated_current():
    """Direct input: a (B, ...) current held for T steps equals the (T, B, ...) copy."""
    gen = torch.Generator().manual_seed(3)
    cur = (torch.rand(B, C, generator=gen) * 1.5).requires_grad_()
    spk_c, mem_c = lif_sequence(cur, 0.9, 1.0, ATan(), steps=T)
    spk_c.sum().backward()
    g_c = cur.grad.clone()
    cur.grad = None
    spk_r, mem_r = lif_sequence(cur.unsqueeze(0).repeat(T, 1, 1), 0.9, 1.0, ATan())
    spk_r.sum().backward()
    assert torch.equal(spk_c, spk_r) and torch.equal(mem_c, mem_r)
    torch.testing.assert_close(g_c, cur.grad)
    # the module takes the stride-0 view itself
    lif = LIF(0.9, 1.0)
    assert torch.equal(lif(cur.detach().unsqueeze(0).expand(T, B, C)), spk_c)


def test_hand_computed_trace():
    """beta 0.5, threshold 1, constant current 0.6: U = 0.6, 0.9, 1.05 (spike), 0.125, ..."""
    spk, mem = lif_sequence(torch.tensor([0.6]), 0.5, 1.0, ATan(), "subtract", steps=5)
    expected_mem = [0.6, 0.9, 1.05, 0.5 * 1.05 + 0.6 - 1.0, 0.5 * 0.125 + 0.6]
    torch.testing.assert_close(mem.flatten(), torch.tensor(expected_mem))
    assert spk.flatten().tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    spk0, mem0 = lif_sequence(torch.tensor([0.6]), 0.5, 1.0, ATan(), "zero", steps=5)
    torch.testing.assert_close(mem0.flatten(), torch.tensor([0.6, 0.9, 1.05, 0.6, 0.9]))


def test_surrogate_values_and_registry():
    x = torch.tensor([0.0, 0.5, -1.0])
    torch.testing.assert_close(ATan(2.0).grad(x), 1.0 / (1 + (torch.pi * x) ** 2))
    torch.testing.assert_close(FastSigmoid(25.0).grad(x), torch.tensor([1.0, 1 / 13.5**2, 1 / 26.0**2]))
    torch.testing.assert_close(Triangular(1.0).grad(x), torch.tensor([1.0, 0.5, 0.0]))
    torch.testing.assert_close(Triangular(2.0, scale=0.3).grad(x), torch.tensor([0.3, 0.225, 0.15]))
    assert get_surrogate("fast-sigmoid", 10) == FastSigmoid(10.0)
    with pytest.raises(ValueError, match="'nope'.*arctan"):
        get_surrogate("nope")
    for sg in (ATan(), FastSigmoid(), Triangular()):
        assert pickle.loads(pickle.dumps(sg)) == sg


def test_lif_bad_parameters():
    with pytest.raises(ValueError, match="beta=1.5"):
        LIF(beta=1.5)
    with pytest.raises(ValueError, match="reset 'soft'"):
        LIF(reset="soft")
    with pytest.raises(ValueError, match="threshold=0"):
        LIF(threshold=0)


def test_per_channel_parameters_broadcast():
    lif = LIF(0.9, 1.0, channels=3, learn_threshold=True)
    assert lif.threshold.shape == (3,)
    with torch.no_grad():
        lif.threshold.copy_(torch.tensor([0.1, 1.0, 100.0]))
    spk = lif(torch.full((4, 2, 3, 5, 5), 0.5))
    rates = spk.mean(dim=(0, 1, 3, 4))
    assert rates[0] > 0.5 and rates[2] == 0  # low threshold fires often, huge one never


def test_lif_copies_and_pickles_after_a_forward_with_gradients():
    lif = LIF(0.9, 1.0, learn_beta=True)
    lif(torch.rand(5, 2, 3, requires_grad=True)).sum().backward()
    for clone in (copy.deepcopy(lif), pickle.loads(pickle.dumps(lif))):
        assert clone.beta.item() == pytest.approx(0.9)
    # snntorch keeps the graph-attached membrane on the module and cannot do either
    ref = snn.Leaky(beta=0.9)
    ref(torch.rand(2, 3, requires_grad=True), ref.init_leaky())
    with pytest.raises(RuntimeError):
        copy.deepcopy(ref)
    with pytest.raises(AttributeError):
        pickle.dumps(ref)


def test_reused_membrane_buffer_guards_a_second_backward():
    x = (torch.rand(6, 4, 5) * 2).requires_grad_()
    lif = LIF(0.9, 1.0)  # no probe: the backward pass reuses the membrane buffer
    out = lif(x).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()
    # keeping the membranes keeps a second backward possible, with the same gradient
    spk, mem = lif_sequence(x, 0.9, 1.0, ATan(), keep_membranes=True)
    first = torch.autograd.grad(spk.sum(), x, retain_graph=True)[0]
    mem_before = mem.clone()
    second = torch.autograd.grad(spk.sum(), x)[0]
    assert torch.equal(first, second) and torch.equal(mem, mem_before)
    torch.testing.assert_close(first, torch.autograd.grad(lif(x).sum(), x)[0])


# ---------------------------------------------------------------------------------------
# the kernels for torch.compile, run eagerly here (tests/test_engine.py compiles them)


def _channels_last(x):
    """(..., C, H, W) -> (..., H, W, C) view."""
    n = x.dim()
    return x.permute(*range(n - 3), n - 2, n - 1, n - 3)


def test_chunk_sizes_cover_T_with_few_kernel_sizes():
    assert _chunk_sizes(25) == [5] * 5 and _chunk_sizes(12) == [4] * 3 and _chunk_sizes(6) == [6]
    assert _chunk_sizes(7) == [7] and _chunk_sizes(13) == [5, 5, 3] and _chunk_sizes(1) == [1]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize("steps", [13, 12])
def test_chunked_kernels_equal_the_eager_engine(reset, constant, steps):
    gen = torch.Generator().manual_seed(4)
    shape = (B, 3, 5) if constant else (steps, B, 3, 5)
    cur = (torch.randn(*shape, generator=gen) + 0.6).requires_grad_()
    beta = torch.tensor([0.5, 0.8, 0.95]).reshape(3, 1)
    thr = torch.tensor([0.7, 1.0, 1.3]).reshape(3, 1)
    spk, _ = lif_sequence(cur, beta, thr, ATan(), reset, steps if constant else None)
    w = torch.randn(spk.shape, generator=gen)
    (grad,) = torch.autograd.grad((spk * w).sum(), cur)
    with torch.no_grad():
        k_spk, saved = lif_chunks_forward(cur, beta, thr, steps, constant, reset == "subtract")
        k_grad = lif_chunks_backward(cur, saved, w, beta, thr, ATan(), constant, reset == "subtract")
    assert spk.sum() > 50 and torch.equal(k_spk, spk)
    torch.testing.assert_close(k_grad, grad, rtol=1e-5, atol=1e-6)
    assert k_grad.shape == cur.shape


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size", [(6, 8), (7, 5)])
@pytest.mark.parametrize("constant", [False, True])
def test_pooled_kernels_equal_lif_then_pool_values_and_gradients(kind, size, constant):
    """Channels-last (B, H, W, C) steps, odd sizes included (the last row/column is dropped)."""
    gen = torch.Generator().manual_seed(5)
    H, W = size
    shape = (B, 4, H, W) if constant else (T, B, 4, H, W)
    cur = (torch.randn(*shape, generator=gen) * 0.8 + 0.5).requires_grad_()
    beta = torch.tensor([0.5, 0.7, 0.9, 0.95])  # per channel: the last dimension of the kernels' views
    thr = torch.tensor(1.0)
    spk, _ = lif_sequence(cur, beta.reshape(4, 1, 1), thr, Triangular(), steps=T if constant else None)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    ref = pool(spk.reshape(T * B, 4, H, W), 2).reshape(T, B, 4, H // 2, W // 2)
    w = torch.randn(ref.shape, generator=gen)
    (grad,) = torch.autograd.grad((ref * w).sum(), cur)
    with torch.no_grad():
        pooled, saved = lif_chunks_forward(_channels_last(cur), beta, thr, T, constant, True, (kind, (-3, -2)))
        k_grad = lif_chunks_backward(_channels_last(cur), saved, _channels_last(w).contiguous(), beta, thr,
                                     Triangular(), constant, True, (kind, (-3, -2)))
    assert ref.sum() > 50 and torch.equal(_channels_last(ref), pooled)
    torch.testing.assert_close(_channels_last(grad), k_grad, rtol=1e-5, atol=1e-6)
    if kind == "max":  # the position is where max_pool2d's index points, inside its window
        _, idx = F.max_pool2d(spk.reshape(T * B, 4, H, W), 2, return_indices=True)
        expected = (idx // W % 2) * 2 + idx % W % 2
        position = torch.cat(saved[2])
        assert torch.equal(_channels_last(expected.reshape(ref.shape)).float(), position)


def test_pooled_kernels_on_sequences_and_a_hand_made_window():
    # 1-D: (B, C, L) steps, the pool along the last dimension, L odd
    gen = torch.Generator().manual_seed(6)
    cur = (torch.randn(T, B, 3, 9, generator=gen) + 0.6).requires_grad_()
    spk, _ = lif_sequence(cur, 0.9, 1.0, ATan())
    ref = F.max_pool1d(spk.reshape(T * B, 3, 9), 2).reshape(T, B, 3, 4)
    (grad,) = torch.autograd.grad(ref.sum(), cur)
    one, beta = torch.tensor(1.0), torch.tensor(0.9)
    with torch.no_grad():
        pooled, saved = lif_chunks_forward(cur, beta, one, T, False, True, ("max", (-1,)))
        k_grad = lif_chunks_backward(cur, saved, torch.ones_like(pooled), beta, one, ATan(), False, True,
                                     ("max", (-1,)))
    assert torch.equal(pooled, ref)
    torch.testing.assert_close(k_grad, grad, rtol=1e-5, atol=1e-6)
    # one step, one 2x2 window (H, W, C = 2, 2, 1), currents 0.5, 2, 0.2, 3: positions 1 and 3
    # fire; max pooling routes the gradient to the first of them (1), average pooling a quarter
    # to each. The state is the membrane before the step (zero), window by window.
    cur = torch.tensor([0.5, 2.0, 0.2, 3.0]).reshape(1, 2, 2, 1)
    half, state = torch.tensor(0.5), torch.zeros(4, 1, 1, 1, 1)
    pooled, position, new_state = lif_pool_chunk(cur, state, half, one, 1, True, True, "max", (-3, -2))
    assert pooled.flatten().tolist() == [1.0] and position.flatten().tolist() == [1.0]
    assert torch.equal(new_state.flatten(), cur.flatten())  # U = I at the first step
    zero = torch.zeros(1, 2, 2, 1)
    g, acc, total = lif_pool_chunk_grad(cur, state, position, torch.ones(1, 1, 1, 1, 1), zero, zero, half, one,
                                        Triangular(2.0, 1.0), True, True, "max", (-3, -2))
    assert g is None and total.flatten().tolist() == [0.0, 0.5, 0.0, 0.0]  # 1 - |U - 1| / 2 at position 1 only
    pooled, position, _ = lif_pool_chunk(cur, state, half, one, 1, True, True, "avg", (-3, -2))
    assert pooled.flatten().tolist() == [0.5] and position is None
    g, acc, total = lif_pool_chunk_grad(cur, state, None, torch.ones(1, 1, 1, 1, 1), zero, zero, half, one,
                                        Triangular(2.0, 1.0), True, True, "avg", (-3, -2))
    assert total.flatten().tolist() == pytest.approx([0.25 * 0.75, 0.25 * 0.5, 0.25 * 0.6, 0.0])


def test_spike_max_pool_equals_max_pooling_and_keeps_the_layout():
    gen = torch.Generator().manual_seed(0)
    maps = (torch.rand(6, 5, 7, 9, generator=gen) < 0.3).float().contiguous(memory_format=torch.channels_last)
    out = spike_max_pool(maps, (-2, -1))
    assert out.shape == (6, 5, 3, 4)  # odd last row and column dropped, as max_pool2d does
    assert torch.equal(out, F.max_pool2d(maps, 2))
    assert out.is_contiguous(memory_format=torch.channels_last)
    seq = torch.randn(4, 3, 11, generator=gen)  # any values without NaNs, not only spikes
    assert torch.equal(spike_max_pool(seq, (-1,)), F.max_pool1d(seq, 2))
    assert spike_max_pool(torch.tensor([[[0.0, 1.0, 0.0, 0.0]]]), (-1,)).tolist() == [[[1.0, 0.0]]]
    with pytest.raises(ValueError, match="size 1 along dimension -1"):
        spike_max_pool(torch.zeros(2, 3, 1), (-1,))


@pytest.mark.parametrize("dims", [1, 2])
def test_lif_pool_in_inference_equals_the_pool_of_the_spikes_and_training_keeps_max_pool(dims):
    gen = torch.Generator().manual_seed(1)
    shape = (T, B, 4) + ((9,) if dims == 1 else (7, 6))
    cur = torch.randn(shape, generator=gen) * 2
    lif = LIF(beta=0.9, threshold=1.0)
    pool = torch.nn.MaxPool1d(2) if dims == 1 else torch.nn.MaxPool2d(2)
    assert lif.fuses(pool, dims + 2)
    with engine.using("eager"):
        with torch.no_grad():
            spikes = lif(cur)
            pooled = lif(cur, pool=pool)  # the strided maxima
        expected = pool(spikes.reshape(T * B, *shape[2:]))
        assert spikes.sum() > 0 and torch.equal(pooled, expected.reshape(T, B, *expected.shape[1:]))
        # with gradients: the pool module itself (its gradient goes to one maximum of a window)
        x = cur.clone().requires_grad_(True)
        out = lif(x, pool=pool)
        assert torch.equal(out.detach(), pooled)
        out.sum().backward()
        x2 = cur.clone().requires_grad_(True)
        pool(lif(x2).reshape(T * B, *shape[2:])).sum().backward()
    assert x.grad.abs().sum() > 0 and torch.equal(x.grad, x2.grad)
