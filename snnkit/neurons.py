"""Leaky integrate-and-fire (LIF) neurons.

The maths lives in two pure functions and one thin module:

* :func:`lif_step` advances one time step: ``(current, state, params) -> (spikes, state)``.
  It is the reference definition, written with ordinary autograd ops.
* :func:`lif_sequence` runs a whole sequence (T, B, ...) at once with a hand-written
  backward over time. It gives exactly the spikes and membranes of repeated
  :func:`lif_step` calls and is what models use, because one autograd node for the whole
  recurrence is much cheaper than T small graphs.
* :func:`lif_chunk`, :func:`lif_pool_chunk` and their gradients (:func:`lif_chunk_grad`,
  :func:`lif_pool_chunk_grad`) are the same recurrence written as pure functions over a
  few steps, for ``torch.compile``: each compiles into one loop over the neurons, and
  :func:`lif_chunks_forward` / :func:`lif_chunks_backward` chain them over T. The pooled
  pair runs a following 2-wide max or average pool inside that loop. :mod:`snnkit.engine`
  decides when they run (long runs) and falls back to :func:`lif_sequence` where
  compiling fails.
* :class:`LIF` holds the parameters (leak, threshold, reset, surrogate) of one layer.

Dynamics (matched to ``snntorch.Leaky`` with its default ``reset_delay=True``)::

    U[t] = beta * U[t-1] + I[t] - theta * S[t-1]        (reset="subtract")
    U[t] = beta * (1 - S[t-1]) * U[t-1] + I[t]          (reset="zero")
    U[t] = beta * U[t-1] + I[t]                         (reset="none": no reset)
    S[t] = H(U[t] - theta)

The reset uses the previous step's spike and carries no gradient (it is detached), and the
membrane that is returned for step t is ``U[t]`` before that step's reset is applied
(the reset takes effect at step t+1). ``beta`` is clamped to [0, 1].
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from . import engine
from .surrogate import Surrogate, get_surrogate

__all__ = ["LIFState", "lif_step", "lif_sequence", "lif_chunk", "lif_chunk_grad", "lif_pool_chunk",
           "lif_pool_chunk_grad", "lif_chunks_forward", "lif_chunks_backward", "spike_max_pool", "LIF", "RESETS",
           "POOLS",
           "check_lif_params"]

RESETS = ("subtract", "zero", "none")
#: the pools :func:`lif_pool_chunk` runs: 2-wide windows, stride 2, no padding
POOLS = ("max", "avg")


class LIFState(NamedTuple):
    """State of a LIF layer between steps: membrane ``mem`` and last spikes ``spk`` (B, ...)."""

    mem: torch.Tensor
    spk: torch.Tensor


def _check_reset(reset: str) -> None:
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}; expected one of {RESETS}")


def check_lif_params(beta: float, threshold: float, reset: str) -> None:
    """Raise ValueError naming the value if a LIF leak, threshold or reset is not accepted."""
    _check_reset(reset)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta={beta}: expected a leak in [0, 1]")
    if threshold <= 0:
        raise ValueError(f"threshold={threshold}: expected a positive number")


def lif_step(
    current: torch.Tensor,
    state: LIFState | None,
    beta: torch.Tensor | float,
    threshold: torch.Tensor | float,
    surrogate: Surrogate,
    reset: str = "subtract",
) -> tuple[torch.Tensor, LIFState]:
    """One LIF step. ``current`` (B, ...) -> spikes (B, ...) and the new state.

    ``beta`` and ``threshold`` broadcast against ``current`` (a scalar per layer, or
    shaped like (C, 1, 1) per channel). ``state=None`` starts from rest (U = 0, S = 0).
    """
    _check_reset(reset)
    if state is None:
        zeros = torch.zeros_like(current)
        state = LIFState(zeros, zeros)
    prev_spk = state.spk.detach()
    if reset == "subtract":
        mem = beta * state.mem + current - prev_spk * threshold
    elif reset == "zero":
        mem = beta * (1 - prev_spk) * state.mem + current
    else:
        mem = beta * state.mem + current
    spk = surrogate(mem - threshold)
    return spk, LIFState(mem, spk)


class _LIFSequence(torch.autograd.Function):
    """Whole-sequence LIF with a backward pass written over time by hand.

    Inputs: current (T, B, ...) or a constant current (B, ...) repeated for ``steps``
    steps; beta and threshold already shaped to broadcast against (B, ...).
    Outputs: spikes (T, B, ...) and membranes (T, B, ...); the membranes are returned for
    inspection only (they carry no gradient).
    """

    @staticmethod
    def forward(ctx, current, beta, threshold, surrogate, reset, steps, reuse_mem):
        spk_all, mem_all = _lif_forward_inplace(current, beta, threshold, reset, steps)
        ctx.reuse_mem = reuse_mem
        ctx.save_for_backward(mem_all, spk_all, beta, threshold)
        ctx.surrogate = surrogate
        ctx.subtract = reset == "subtract"
        ctx.zero = reset == "zero"
        ctx.constant = steps is not None
        ctx.mark_non_differentiable(mem_all)
        # no zero-filled (T, B, ...) gradient for the membranes, which carry none
        ctx.set_materialize_grads(False)
        return spk_all, mem_all

    @staticmethod
    def backward(ctx, grad_spk, _grad_mem):
        mem_all, spk_all, beta, threshold = ctx.saved_tensors
        need_cur, need_beta, need_thr = ctx.needs_input_grad[:3]
        T = mem_all.shape[0]
        # g[t] = dL/dS[t] * dS[t]/dU[t], all steps at once, in one buffer. When nobody else
        # holds the membranes (see LIF.forward) that buffer is the saved membranes
        # themselves: autograd's version check then turns a second backward through this
        # node into a clear error instead of a wrong answer.
        reuse = ctx.reuse_mem and not need_beta
        g = ctx.surrogate.grad_(mem_all.sub_(threshold) if reuse else mem_all - threshold)
        if grad_spk is None:
            g.zero_()
        else:
            g.mul_(grad_spk)
        grad_thr = -g.sum(0) if need_thr else None  # dS[t]/dtheta = -dS[t]/dU[t]
        # then g[t] += dU[t+1]/dU[t] * g[t+1], backwards in time: g becomes dL/dU[t].
        # The reset is detached, so dU[t+1]/dU[t] = beta (subtract, none) or beta * (1 - S[t]) (zero).
        # With a constant current its gradient is the sum over steps, accumulated while
        # each step is still in cache.
        total = g[T - 1].clone() if ctx.constant and need_cur else None
        factor = (1 - spk_all[:-1]).mul_(beta) if ctx.zero else beta
        for t in range(T - 1, 0, -1):
            g[t - 1].addcmul_(g[t], factor[t - 1] if ctx.zero else factor)
            if total is not None:
                total.add_(g[t - 1])
        grad_beta = None
        if need_beta:  # dU[t]/dbeta = U[t-1] (subtract, none) or (1 - S[t-1]) * U[t-1] (zero)
            prev = mem_all[:-1] * (1 - spk_all[:-1]) if ctx.zero else mem_all[:-1]
            grad_beta = (g[1:] * prev).sum(0)
        if need_thr and ctx.subtract:  # dU[t]/dtheta = -S[t-1]
            grad_thr -= (g[1:] * spk_all[:-1]).sum(0)
        grad_current = None
        if need_cur:
            grad_current = total if ctx.constant else g
        return (
            grad_current,
            _reduce_to(grad_beta, beta) if need_beta else None,
            _reduce_to(grad_thr, threshold) if need_thr else None,
            None,
            None,
            None,
            None,
        )


def _steps_like(x: torch.Tensor, T: int) -> torch.Tensor:
    """An empty (T, *x.shape) buffer whose steps have x's memory layout (e.g. channels-last)."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        B, C, H, W = x.shape
        return x.new_empty((T, B, H, W, C)).permute(0, 1, 4, 2, 3)
    return x.new_empty((T, *x.shape))


def _lif_forward_inplace(current, beta, threshold, reset: str, steps: int | None):
    """The forward recurrence, written into preallocated (T, B, ...) buffers.

    Shared by the autograd function and by inference with gradients off.
    """
    constant = steps is not None
    T = steps if constant else current.shape[0]
    step = current if constant else current[0]
    mem_all, spk_all = _steps_like(step, T), _steps_like(step, T)
    for t in range(T):
        cur = current if constant else current[t]
        mem = mem_all[t]
        if t == 0:
            mem.copy_(cur)  # U[-1] = 0, S[-1] = 0
        elif reset == "subtract":
            # U = beta * U_prev + I - theta * S_prev, in place and in snntorch's order of
            # operations: beta * U_prev is rounded before the add, as snntorch does (a fused
            # multiply-add would round differently); theta * S_prev is exact (S is 0 or 1),
            # so subtracting it with addcmul_ rounds the same as a separate product
            torch.mul(mem_all[t - 1], beta, out=mem)
            mem.add_(cur).addcmul_(spk_all[t - 1], threshold, value=-1.0)
        elif reset == "zero":
            torch.mul(mem_all[t - 1], 1 - spk_all[t - 1], out=mem)
            mem.mul_(beta).add_(cur)
        else:  # "none": snntorch's beta * U + I, in its order
            torch.mul(mem_all[t - 1], beta, out=mem)
            mem.add_(cur)
        torch.gt(mem, threshold, out=spk_all[t])
    return spk_all, mem_all


def _reduce_to(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Sum a (B, ...) gradient down to the broadcast shape of a parameter."""
    extra = grad.dim() - like.dim()
    if extra > 0:
        grad = grad.sum(dim=tuple(range(extra)))
    dims = tuple(i for i, n in enumerate(like.shape) if n == 1 and grad.shape[i] != 1)
    if dims:
        grad = grad.sum(dim=dims, keepdim=True)
    return grad.reshape(like.shape)


def lif_sequence(
    current: torch.Tensor,
    beta: torch.Tensor | float,
    threshold: torch.Tensor | float,
    surrogate: Surrogate,
    reset: str = "subtract",
    steps: int | None = None,
    *,
    keep_membranes: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a LIF layer over a whole sequence.

    Args:
        current: input current, (T, B, ...); or (B, ...) held constant for ``steps`` steps
            (direct input: the first layer's current is the same at every step, so it is
            computed once and never copied T times).
        beta, threshold: leak and threshold, scalars or tensors broadcasting to (B, ...).
        surrogate: the surrogate gradient of the spike.
        reset: "subtract", "zero" or "none".
        steps: T when ``current`` is constant, else None.
        keep_membranes: False promises that the caller discards the returned membranes;
            the backward pass may then reuse their memory (saves a (T, B, ...) buffer).

    Returns:
        spikes (T, B, ...) in {0, 1} and membranes (T, B, ...) (membranes carry no gradient).
    """
    _check_reset(reset)
    if steps is not None and steps < 1:
        raise ValueError(f"steps={steps}: expected an integer >= 1")
    like = current
    beta = torch.as_tensor(beta, dtype=like.dtype, device=like.device)
    threshold = torch.as_tensor(threshold, dtype=like.dtype, device=like.device)
    if not (torch.is_grad_enabled() and (current.requires_grad or beta.requires_grad or threshold.requires_grad)):
        return _lif_forward_inplace(current, beta, threshold, reset, steps)
    return _LIFSequence.apply(current, beta, threshold, surrogate, reset, steps, not keep_membranes)


# ---------------------------------------------------------------------------------------
# kernels for torch.compile: pure functions of tensors over a chunk of K steps (unrolled), each
# compiled into one loop over the neurons that keeps a neuron's membrane in registers from
# step to step. A chunk starts from the membrane the previous one ended with (zero before the
# first: U = (0 beta + I) - 0 theta = I exactly, as the eager engine's first step), so one
# compiled kernel serves every chunk and every T that K divides. The backward pass
# recomputes the membranes of its chunk from that state and the input current instead of
# reading (T, B, ...) membranes back from memory.


def _advance(mem, spk, cur, beta, threshold, subtract: bool):
    """U[t] from U[t-1], S[t-1] and I[t], in the eager engine's order of operations."""
    if subtract:
        return (mem * beta + cur) - spk * threshold
    return (mem * (1 - spk)) * beta + cur


def _back_over_time(mems: list, grads: list, acc, total, beta, threshold, surrogate: Surrogate, constant: bool,
                    subtract: bool):
    """dL/dI of the steps of a chunk, backwards: ``g[t] = dL/dS[t] g'(U[t] - theta) + g[t+1] dU[t+1]/dU[t]``
    with ``dU[t+1]/dU[t]`` = beta (subtract) or beta (1 - S[t]) (zero; the reset is detached).
    ``acc`` is g of the step after the chunk (zero after the last), ``total`` the running sum
    of g over the later steps (constant current). Returns the chunk's g (in order), acc, total."""
    out = []
    for t in range(len(mems) - 1, -1, -1):
        local = surrogate.grad(mems[t] - threshold) * grads[t]
        factor = beta if subtract else (1 - (mems[t] > threshold).to(local.dtype)) * beta
        acc = local + acc * factor
        if constant:
            total = total + acc
        out.append(acc)
    return out[::-1], acc, total


def lif_chunk(current: torch.Tensor, state: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor, steps: int,
              constant: bool, subtract: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` LIF steps from the membrane ``state`` (B, ...): spikes (steps, B, ...) and the
    last membrane (B, ...).

    ``current`` is (steps, B, ...), or (B, ...) at every step when ``constant``; ``beta`` and
    ``threshold`` broadcast against one step; ``subtract``: the reset. Same spikes as
    :func:`lif_sequence` (same order of floating-point operations).
    """
    mem = state
    spk = (mem > threshold).to(mem.dtype)
    spikes = []
    for t in range(steps):
        mem = _advance(mem, spk, current if constant else current[t], beta, threshold, subtract)
        spk = (mem > threshold).to(mem.dtype)
        spikes.append(spk)
    return torch.stack(spikes), mem


def lif_chunk_grad(current: torch.Tensor, state: torch.Tensor, grad_spikes: torch.Tensor, acc: torch.Tensor,
                   total: torch.Tensor | None, beta: torch.Tensor, threshold: torch.Tensor, surrogate: Surrogate,
                   constant: bool, subtract: bool):
    """The backward pass of :func:`lif_chunk` from dL/dS (steps, B, ...): ``(dL/dI, acc, total)``
    (see :func:`_back_over_time`); dL/dI is (steps, B, ...), or None when ``constant`` (then
    ``total`` carries it). Leak and threshold get no gradient here."""
    mem = state
    spk = (mem > threshold).to(mem.dtype)
    mems = []
    for t in range(grad_spikes.shape[0]):
        mem = _advance(mem, spk, current if constant else current[t], beta, threshold, subtract)
        spk = (mem > threshold).to(mem.dtype)
        mems.append(mem)
    grads, acc, total = _back_over_time(mems, [grad_spikes[t] for t in range(len(mems))], acc, total, beta,
                                        threshold, surrogate, constant, subtract)
    return (None if constant else torch.stack(grads)), acc, total


def _windows(x: torch.Tensor, dims: tuple[int, ...]) -> list[torch.Tensor]:
    """Views of ``x``, one per position in a 2-wide pooling window over the (negative) ``dims``,
    in PyTorch's scan order (row-major); an odd last row or column is dropped, as pooling does."""
    views = [x]
    for d in dims:
        half = x.shape[d] // 2
        split = []
        for v in views:
            for k in (0, 1):
                index = [slice(None)] * v.dim()
                index[d] = slice(k, 2 * half, 2)
                split.append(v[tuple(index)])
        views = split
    return views


def spike_max_pool(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """A 2-wide, stride-2, unpadded max pool of ``x`` over the (negative) ``dims``, as
    elementwise maxima of strided views, one dimension at a time (an odd last row or column
    is dropped, as pooling does). Equal to ``max_pool1d``/``max_pool2d`` for any input without
    NaNs; on spikes in the channels-last layout it reads the channels as contiguous vectors,
    which the pooling kernels do poorly for a few channels. No pooling indices: for
    inference (its gradient would split ties, where max pooling routes to one input)."""
    for d in dims:
        half = x.shape[d] // 2
        if half == 0:
            raise ValueError(f"size {x.shape[d]} along dimension {d}: a 2-wide pool needs at least 2")
        index = [slice(None)] * x.dim()
        index[d] = slice(0, 2 * half, 2)
        even = x[tuple(index)]
        index[d] = slice(1, 2 * half, 2)
        x = torch.maximum(even, x[tuple(index)])
    return x


def _spread(pooled: torch.Tensor, dims: tuple[int, ...], sizes: tuple[int, ...]) -> torch.Tensor:
    """Each pooled value repeated over its window: (..., n // 2, ...) -> (..., n, ...) along ``dims``
    (the odd last row or column gets its neighbour's value; callers mask it)."""
    for d, n in zip(dims, sizes):
        rows = (torch.arange(n, device=pooled.device) // 2).clamp(max=n // 2 - 1)
        pooled = pooled[(Ellipsis, rows) + (slice(None),) * (-d - 1)]
    return pooled


def _window_position(dims: tuple[int, ...], sizes: tuple[int, ...], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per element over ``dims``: its position in its window (scan order) and whether a window
    covers it at all (False on a dropped odd row or column)."""
    pos = inside = None
    for i, (d, n) in enumerate(zip(dims, sizes)):
        idx = torch.arange(n, device=device)
        shape = (n,) + (1,) * (-d - 1)
        p = ((idx % 2) * 2 ** (len(dims) - 1 - i)).view(shape)
        ok = (idx < 2 * (n // 2)).view(shape)
        pos = p if pos is None else pos + p
        inside = ok if inside is None else inside & ok
    return pos, inside


def lif_pool_chunk(current: torch.Tensor, state: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor,
                   steps: int, constant: bool, subtract: bool, kind: str, dims: tuple[int, ...]):
    """A LIF layer and the 2-wide pool after it (``kind`` "max" or "avg", kernel 2, stride 2,
    over the negative ``dims``), ``steps`` steps in one pass: what :func:`lif_chunk` then
    ``max_pool``/``avg_pool`` would give, without writing the unpooled spikes.

    ``state`` holds the membranes window by window, (P, B, ... halved along ``dims``) for P
    positions per window (zeros before the first chunk). Returns the pooled spikes
    (steps, B, ... halved), for "max" the position (scan order, as a float) of each window's
    first spike, where max pooling routes its gradient (0 when none fired; None for "avg"),
    and the new state.
    """
    views = _windows(current, dims)
    mems = [state[p] for p in range(len(views))]
    spks = [(m > threshold).to(m.dtype) for m in mems]
    pooled, firsts = [], []
    for t in range(steps):
        for p, v in enumerate(views):
            mems[p] = _advance(mems[p], spks[p], v if constant else v[t], beta, threshold, subtract)
            spks[p] = (mems[p] > threshold).to(mems[p].dtype)
        if kind == "avg":
            count = spks[0]
            for s_ in spks[1:]:
                count = count + s_
            pooled.append(count / len(spks))  # exact: a small integer over 2 or 4
            continue
        fired = [s_ > 0 for s_ in spks]
        anyone, first = fired[0], torch.zeros_like(mems[0])
        for k in range(len(fired) - 1, 0, -1):  # the earliest spike in scan order wins, as in max_pool
            anyone = anyone | fired[k]
            first = torch.where(fired[k], float(k), first)
        pooled.append(anyone.to(mems[0].dtype))
        firsts.append(torch.where(fired[0], 0.0, first))
    position = torch.stack(firsts) if kind == "max" else None
    return torch.stack(pooled), position, torch.stack(mems)


def lif_pool_chunk_grad(current: torch.Tensor, state: torch.Tensor, position: torch.Tensor | None,
                        grad_pooled: torch.Tensor, acc: torch.Tensor, total: torch.Tensor | None, beta: torch.Tensor,
                        threshold: torch.Tensor, surrogate: Surrogate, constant: bool, subtract: bool, kind: str,
                        dims: tuple[int, ...]):
    """The backward pass of :func:`lif_pool_chunk` from dL/d(pooled spikes): the pool's gradient
    (to the first spike of a max window, or a 1/n share of an average) and the LIF's, in one
    pass over the full-size neurons. Returns ``(dL/dI, acc, total)`` as :func:`lif_chunk_grad`."""
    full = current if constant else current[0]
    sizes = tuple(full.shape[d] for d in dims)
    pos, inside = _window_position(dims, sizes, full.device)
    mem = _spread(state[0], dims, sizes)
    for p in range(1, state.shape[0]):  # the window-by-window state back on the neurons' grid
        mem = torch.where(pos == p, _spread(state[p], dims, sizes), mem)
    spk = (mem > threshold).to(mem.dtype)
    mems = []
    steps = grad_pooled.shape[0]
    for t in range(steps):
        mem = _advance(mem, spk, current if constant else current[t], beta, threshold, subtract)
        spk = (mem > threshold).to(mem.dtype)
        mems.append(mem)
    spread = _spread(grad_pooled, dims, sizes)
    if kind == "avg":
        grad_spikes = torch.where(inside, spread / 2 ** len(dims), 0.0)
    else:
        grad_spikes = torch.where(inside & (_spread(position, dims, sizes) == pos), spread, 0.0)
    grads, acc, total = _back_over_time(mems, [grad_spikes[t] for t in range(steps)], acc, total, beta, threshold,
                                        surrogate, constant, subtract)
    return (None if constant else torch.stack(grads)), acc, total


def _chunk_sizes(T: int) -> list[int]:
    """Steps per compiled call: one size that divides T where one of 5, 4, 6 does (one kernel
    for every chunk), else 5s and a remainder; T itself up to 8."""
    for k in (5, 4, 6):
        if T % k == 0:
            return [k] * (T // k)
    if T <= 8:
        return [T]
    return [5] * (T // 5) + [T % 5]


def _window_state(full: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Zero membranes, window by window, for neurons shaped like ``full`` (B, ...)."""
    shape = list(full.shape)
    for d in dims:
        shape[d] //= 2
    return full.new_zeros((2 ** len(dims), *shape))


def lif_chunks_forward(current: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor, steps: int,
                       constant: bool, subtract: bool, pool: tuple[str, tuple[int, ...]] | None = None,
                       run=None):
    """Run a LIF layer (and its pool) chunk by chunk through ``run(kernel, *args)`` (default:
    eagerly). Returns the spikes or pooled spikes (T, B, ...), and what the backward pass
    needs: the state before each chunk, the chunk sizes and (max pool) the positions."""
    run = run or (lambda fn, *args: fn(*args))
    full = current if constant else current[0]
    state = torch.zeros_like(full) if pool is None else _window_state(full, pool[1])
    outs, states, positions = [], [], []
    start = 0
    sizes = _chunk_sizes(steps)
    for k in sizes:
        cur = current if constant else current[start:start + k]
        states.append(state)
        if pool is None:
            out, state = run(lif_chunk, cur, state, beta, threshold, k, constant, subtract)
        else:
            out, position, state = run(lif_pool_chunk, cur, state, beta, threshold, k, constant, subtract, *pool)
            positions.append(position)
        outs.append(out)
        start += k
    return (outs[0] if len(outs) == 1 else torch.cat(outs)), (states, sizes, positions)


def lif_chunks_backward(current: torch.Tensor, saved, grad_out: torch.Tensor, beta: torch.Tensor,
                        threshold: torch.Tensor, surrogate: Surrogate, constant: bool, subtract: bool,
                        pool: tuple[str, tuple[int, ...]] | None = None, run=None) -> torch.Tensor:
    """dL/dI of :func:`lif_chunks_forward` from dL/d(its output); ``saved`` is what it returned
    second. (T, B, ...), or (B, ...) for a constant current."""
    run = run or (lambda fn, *args: fn(*args))
    states, sizes, positions = saved
    full = current if constant else current[0]
    acc = torch.zeros_like(full)
    total = torch.zeros_like(full) if constant else None
    grads = []
    stop = sum(sizes)
    for c in range(len(sizes) - 1, -1, -1):
        start = stop - sizes[c]
        cur = current if constant else current[start:stop]
        if pool is None:
            grad, acc, total = run(lif_chunk_grad, cur, states[c], grad_out[start:stop], acc, total, beta,
                                   threshold, surrogate, constant, subtract)
        else:
            grad, acc, total = run(lif_pool_chunk_grad, cur, states[c], positions[c] if positions else None,
                                   grad_out[start:stop], acc, total, beta, threshold, surrogate, constant, subtract,
                                   *pool)
        grads.append(grad)
        stop = start
    if constant:
        return total
    return grads[0] if len(grads) == 1 else torch.cat(grads[::-1])


class _Kernels(torch.autograd.Function):
    """A LIF layer (and optionally its pool) through the compiled kernels (see
    :func:`lif_chunks_forward`); ``pool`` is None or (kind, dims)."""

    @staticmethod
    def forward(ctx, current, beta, threshold, surrogate, steps, constant, subtract, pool):
        out, saved = lif_chunks_forward(current, beta, threshold, steps, constant, subtract, pool, engine.run_kernel)
        ctx.save_for_backward(current, beta, threshold)
        ctx.saved = saved  # intermediate states, not inputs or outputs of this node
        ctx.options = (surrogate, constant, subtract, pool)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        current, beta, threshold = ctx.saved_tensors
        surrogate, constant, subtract, pool = ctx.options
        grad = lif_chunks_backward(current, ctx.saved, grad_out.contiguous(), beta, threshold, surrogate, constant,
                                   subtract, pool, engine.run_kernel)
        ctx.saved = None
        return (grad,) + (None,) * 7


def _pool_kind(pool: nn.Module, dims: int) -> str | None:
    """"max" or "avg" if ``pool`` is a 2-wide, stride-2, unpadded pool over ``dims`` spatial
    dimensions that :func:`lif_pool_chunk` reproduces exactly; else None."""
    def pair(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * dims

    max_type, avg_type = (nn.MaxPool1d, nn.AvgPool1d) if dims == 1 else (nn.MaxPool2d, nn.AvgPool2d)
    if isinstance(pool, max_type):
        ok = not pool.return_indices and pair(pool.dilation) == (1,) * dims
        kind = "max"
    elif isinstance(pool, avg_type):
        ok = getattr(pool, "divisor_override", None) is None
        kind = "avg"
    else:
        return None
    stride = pool.stride if pool.stride is not None else pool.kernel_size
    ok = ok and pair(pool.kernel_size) == (2,) * dims and pair(stride) == (2,) * dims
    ok = ok and pair(pool.padding) == (0,) * dims and not pool.ceil_mode
    return kind if ok else None


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


class LIF(nn.Module):
    """A layer of LIF neurons acting on (T, B, C, ...) currents.

    Args:
        beta: initial leak in [0, 1] (membrane decay per step).
        threshold: initial firing threshold.
        reset: "subtract" (soft reset), "zero" (hard reset) or "none" (no reset).
        surrogate: a :class:`~snnkit.surrogate.Surrogate` or registry name.
        learn_beta, learn_threshold: make the leak / threshold trainable.
        channels: if given, one leak and one threshold per channel (dimension 2 of the
            input, the C of (T, B, C, ...)); else one per layer.

    The forward pass accepts a current of shape (T, B, ...), including a stride-0 view
    along T (direct input, see :func:`snnkit.encoding.direct`), which it treats as a
    constant current. It returns spikes (T, B, ...).

    Set ``probe`` to a callable ``probe(layer, spikes, membranes)`` to observe the layer
    (used by metrics and pruning criteria through :func:`snnkit.models.probe`).
    """

    def __init__(
        self,
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: str = "subtract",
        surrogate: str | Surrogate = "arctan",
        learn_beta: bool = False,
        learn_threshold: bool = False,
        channels: int | None = None,
    ) -> None:
        super().__init__()
        check_lif_params(beta, threshold, reset)
        shape = (channels,) if channels else ()
        self.beta = nn.Parameter(torch.full(shape, float(beta)), requires_grad=learn_beta)
        self.threshold = nn.Parameter(torch.full(shape, float(threshold)), requires_grad=learn_threshold)
        self.reset = reset
        self.surrogate = get_surrogate(surrogate)
        self.probe = None

    def extra_repr(self) -> str:
        return (
            f"reset={self.reset!r}, surrogate={self.surrogate}, per_channel={self.beta.dim() > 0}, "
            f"learn_beta={self.beta.requires_grad}, learn_threshold={self.threshold.requires_grad}"
        )

    def _shaped(self, p: torch.Tensor, sample_dims: int) -> torch.Tensor:
        # (C,) -> (C, 1, 1) for a (B, C, H, W) current; scalars stay scalars
        return p.reshape(p.shape + (1,) * (sample_dims - 2)) if p.dim() else p

    def fuses(self, pool: nn.Module, sample_dims: int) -> bool:
        """Whether ``forward(current, pool=pool)`` may run ``pool`` inside the LIF kernels.

        True for a 2-wide, stride-2, unpadded max or average pool over (C, L) or (C, H, W)
        steps (``sample_dims`` counts B: 3 or 4) when nothing observes the spikes in between
        (no probe, no forward hooks on this layer or the pool).
        """
        return (sample_dims in (3, 4) and _pool_kind(pool, sample_dims - 2) is not None and self.probe is None
                and not _hooked(self) and not _hooked(pool))

    def forward(self, current: torch.Tensor, pool: nn.Module | None = None) -> torch.Tensor:
        """current (T, B, ...) -> spikes (T, B, ...); with ``pool`` (see :meth:`fuses`), the
        pooled spikes ``pool(spikes)`` (applied to every step)."""
        T = current.shape[0]
        constant = current.stride(0) == 0 and T > 1
        cur = current[0] if constant else current
        neuron_steps = T * (cur.numel() if constant else cur[0].numel())
        if self._kernels_apply(cur) and engine.use_compiled(neuron_steps):
            return self._compiled_forward(cur, T, constant, pool)
        sample_dims = current.dim() - 1
        beta = self._shaped(self.beta.clamp(0, 1), sample_dims)
        threshold = self._shaped(self.threshold, sample_dims)
        keep = self.probe is not None
        steps = T if constant else None
        spk, mem = lif_sequence(cur, beta, threshold, self.surrogate, self.reset, steps, keep_membranes=keep)
        if keep:
            self.probe(self, spk, mem)
        if pool is not None:
            flat = spk.reshape(T * spk.shape[1], *spk.shape[2:])
            dims = tuple(range(2 - flat.dim(), 0))
            if not flat.requires_grad and _pool_kind(pool, len(dims)) == "max":
                spk = spike_max_pool(flat, dims)  # inference: the same maxima, no indices
            else:
                spk = pool(flat)
            spk = spk.reshape(T, -1, *spk.shape[1:])
        return spk

    def runs_on_kernels(self) -> bool:
        """Whether the compiled kernels cover this layer's parameters: fixed leak and
        threshold, a subtractive or zero reset (float32 input and no probe are checked per call)."""
        return not (self.beta.requires_grad or self.threshold.requires_grad) and self.reset in ("subtract", "zero")

    def _kernels_apply(self, cur: torch.Tensor) -> bool:
        """The compiled kernels cover fixed leak and threshold, in float32, a subtractive or zero
        reset (not "none"), with no probe (they do not keep the membranes a probe wants)."""
        return self.runs_on_kernels() and cur.dtype == torch.float32 and self.probe is None

    def _compiled_forward(self, cur: torch.Tensor, T: int, constant: bool, pool: nn.Module | None) -> torch.Tensor:
        lead = 0 if constant else 1  # dimensions before B in cur
        sample_dims = cur.dim() - lead
        beta, threshold = self.beta.detach().clamp(0, 1), self.threshold.detach()
        maps = sample_dims == 4  # (B, C, H, W) steps: run on (B, H, W, C) views, channels last
        if maps:  # per-channel parameters broadcast along the last dimension as they are
            order = tuple(range(lead + 1)) + (lead + 2, lead + 3, lead + 1)
            cur = cur.permute(order)
            spatial = (-3, -2)
        else:
            beta, threshold = self._shaped(beta, sample_dims), self._shaped(threshold, sample_dims)
            spatial = (-1,)
        spec = None if pool is None else (_pool_kind(pool, len(spatial)), spatial)
        subtract = self.reset == "subtract"
        if torch.is_grad_enabled() and cur.requires_grad:
            out = _Kernels.apply(cur, beta, threshold, self.surrogate, T, constant, subtract, spec)
        else:
            with torch.no_grad():
                out, _ = lif_chunks_forward(cur, beta, threshold, T, constant, subtract, spec, engine.run_kernel)
        return out.permute(0, 1, 4, 2, 3) if maps else out  # (T, B, C, H, W) views of channels-last steps

    def step(self, current: torch.Tensor, state: LIFState | None) -> tuple[torch.Tensor, LIFState]:
        """One step: current (B, ...) -> spikes (B, ...), new state (see :func:`lif_step`)."""
        sample_dims = current.dim()
        beta = self._shaped(self.beta.clamp(0, 1), sample_dims)
        threshold = self._shaped(self.threshold, sample_dims)
        return lif_step(current, state, beta, threshold, self.surrogate, self.reset)

    def __getstate__(self):
        # a probe is a temporary observer: never pickle or copy it with the model
        state = self.__dict__.copy()
        state["probe"] = None
        return state
