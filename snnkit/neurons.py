"""Leaky integrate-and-fire (LIF) neurons.

The maths lives in two pure functions and one thin module:

* :func:`lif_step` advances one time step: ``(current, state, params) -> (spikes, state)``.
  It is the reference definition, written with ordinary autograd ops.
* :func:`lif_sequence` runs a whole sequence (T, B, ...) at once with a hand-written
  backward over time. It gives exactly the spikes and membranes of repeated
  :func:`lif_step` calls and is what models use, because one autograd node for the whole
  recurrence is much cheaper than T small graphs.
* :func:`lif_kernel`, :func:`lif_pool_kernel` and their gradients
  (:func:`lif_kernel_grad`, :func:`lif_pool_kernel_grad`) are the same recurrence written
  as pure functions over all T steps, for ``torch.compile``: each compiles into one loop
  over the neurons. The pooled pair runs a following 2-wide max or average pool inside
  that loop. :mod:`snnkit.engine` decides when they run (long runs) and falls back to
  :func:`lif_sequence` where compiling fails.
* :class:`LIF` holds the parameters (leak, threshold, reset, surrogate) of one layer.

Dynamics (matched to ``snntorch.Leaky`` with its default ``reset_delay=True``)::

    U[t] = beta * U[t-1] + I[t] - theta * S[t-1]        (reset="subtract")
    U[t] = beta * (1 - S[t-1]) * U[t-1] + I[t]          (reset="zero")
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

__all__ = ["LIFState", "lif_step", "lif_sequence", "lif_kernel", "lif_kernel_grad", "lif_pool_kernel",
           "lif_pool_kernel_grad", "LIF", "RESETS", "POOLS", "check_lif_params"]

RESETS = ("subtract", "zero")
#: the pools :func:`lif_pool_kernel` runs: 2-wide windows, stride 2, no padding
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
    else:
        mem = beta * (1 - prev_spk) * state.mem + current
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
        # The reset is detached, so dU[t+1]/dU[t] = beta (subtract) or beta * (1 - S[t]) (zero).
        # With a constant current its gradient is the sum over steps, accumulated while
        # each step is still in cache.
        total = g[T - 1].clone() if ctx.constant and need_cur else None
        factor = beta if ctx.subtract else (1 - spk_all[:-1]).mul_(beta)
        for t in range(T - 1, 0, -1):
            g[t - 1].addcmul_(g[t], factor if ctx.subtract else factor[t - 1])
            if total is not None:
                total.add_(g[t - 1])
        grad_beta = None
        if need_beta:  # dU[t]/dbeta = U[t-1] (subtract) or (1 - S[t-1]) * U[t-1] (zero)
            prev = mem_all[:-1] if ctx.subtract else mem_all[:-1] * (1 - spk_all[:-1])
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
        else:
            torch.mul(mem_all[t - 1], 1 - spk_all[t - 1], out=mem)
            mem.mul_(beta).add_(cur)
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
        reset: "subtract" or "zero".
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
# kernels for torch.compile: pure functions of tensors over all T steps. Unrolled over T,
# each compiles into one loop over the neurons that keeps a neuron's membrane in registers
# from step to step. Sizes other than T stay symbolic (see snnkit.engine).


def _membranes(current, beta, threshold, steps: int, constant: bool, subtract: bool) -> list[torch.Tensor]:
    """U[0..T-1] in the eager engine's order of operations (so the spikes are identical)."""
    mems: list[torch.Tensor] = []
    mem = spk = current
    for t in range(steps):
        cur = current if constant else current[t]
        if t == 0:
            mem = cur  # U[-1] = 0, S[-1] = 0
        elif subtract:
            mem = (mem * beta + cur) - spk * threshold
        else:
            mem = (mem * (1 - spk)) * beta + cur
        spk = (mem > threshold).to(cur.dtype)
        mems.append(mem)
    return mems


def lif_kernel(current: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor, steps: int, constant: bool,
               subtract: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and membranes (T, B, ...) of a LIF layer: :func:`lif_sequence`'s forward as one
    pure function.

    ``current`` is (T, B, ...), or (B, ...) held for ``steps`` steps when ``constant``;
    ``beta`` and ``threshold`` broadcast against one step; ``subtract``: the reset.
    """
    mems = _membranes(current, beta, threshold, steps, constant, subtract)
    mem_all = torch.stack(mems)
    return (mem_all > threshold).to(mem_all.dtype), mem_all


def _grad_over_time(local: torch.Tensor, mem_all: torch.Tensor, beta, threshold, constant: bool,
                    subtract: bool) -> torch.Tensor:
    """dL/dI from ``local`` = dL/dS[t] dS[t]/dU[t] (T, ...): ``g[t-1] = local[t-1] + g[t] dU[t]/dU[t-1]``,
    with ``dU[t]/dU[t-1]`` = beta (subtract) or beta (1 - S[t-1]) (zero; the reset is detached).
    With a constant current, the sum of g over the steps."""
    T = local.shape[0]
    acc = total = local[T - 1]
    out = [acc]
    for t in range(T - 1, 0, -1):
        factor = beta if subtract else (1 - (mem_all[t - 1] > threshold).to(local.dtype)) * beta
        acc = local[t - 1] + acc * factor
        out.append(acc)
        total = total + acc
    return total if constant else torch.stack(out[::-1])


def lif_kernel_grad(mem_all: torch.Tensor, grad_spikes: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor,
                    surrogate: Surrogate, constant: bool, subtract: bool) -> torch.Tensor:
    """dL/dI of :func:`lif_kernel` from the membranes and dL/dS, both (T, B, ...): (T, B, ...),
    or (B, ...) when ``constant``. Leak and threshold get no gradient here."""
    local = surrogate.grad(mem_all - threshold) * grad_spikes
    return _grad_over_time(local, mem_all, beta, threshold, constant, subtract)


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


def _spread(pooled: torch.Tensor, dims: tuple[int, ...], sizes: tuple[int, ...]) -> torch.Tensor:
    """Each pooled value repeated over its window: (..., n // 2, ...) -> (..., n, ...) along ``dims``
    (the odd last row or column gets its neighbour's value; callers mask it)."""
    for d, n in zip(dims, sizes):
        rows = (torch.arange(n, device=pooled.device) // 2).clamp(max=n // 2 - 1)
        pooled = pooled[(Ellipsis, rows) + (slice(None),) * (-d - 1)]
    return pooled


def _window_position(dims: tuple[int, ...], sizes: tuple[int, ...], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per element over ``dims``: its position in its window (scan order, uint8) and whether a
    window covers it at all (False on a dropped odd row or column)."""
    pos = inside = None
    for i, (d, n) in enumerate(zip(dims, sizes)):
        idx = torch.arange(n, device=device)
        shape = (n,) + (1,) * (-d - 1)
        p = ((idx % 2) * 2 ** (len(dims) - 1 - i)).view(shape)
        ok = (idx < 2 * (n // 2)).view(shape)
        pos = p if pos is None else pos + p
        inside = ok if inside is None else inside & ok
    return pos.to(torch.uint8), inside


def lif_pool_kernel(current: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor, steps: int, constant: bool,
                    subtract: bool, kind: str, dims: tuple[int, ...]):
    """A LIF layer and the 2-wide pool after it, in one pass: what :func:`lif_kernel` then
    ``max_pool``/``avg_pool`` (kernel 2, stride 2) over ``dims`` would give.

    Returns the pooled spikes (T, B, ... halved along ``dims``) and the membranes
    (T, B, ...); for ``kind="max"`` also the position of each window's first spike (the
    index max pooling routes its gradient to; 0 for a window without spikes), uint8, as
    ``(pooled, position, membranes)``. ``kind="avg"``: ``(pooled, membranes)``.
    """
    mem_all = torch.stack(_membranes(current, beta, threshold, steps, constant, subtract))
    fired = [w > threshold for w in _windows(mem_all, dims)]
    if kind == "avg":
        count = fired[0].to(mem_all.dtype)
        for f in fired[1:]:
            count = count + f.to(mem_all.dtype)
        return count / len(fired), mem_all
    anyone = fired[0]
    for f in fired[1:]:
        anyone = anyone | f
    first = torch.zeros_like(fired[0], dtype=torch.uint8)
    for k in range(len(fired) - 1, 0, -1):  # the earliest spike in scan order wins, as in max_pool
        first = torch.where(fired[k], k, first).to(torch.uint8)
    first = torch.where(fired[0], 0, first).to(torch.uint8)
    return anyone.to(mem_all.dtype), first, mem_all


def lif_pool_kernel_grad(mem_all: torch.Tensor, position: torch.Tensor | None, grad_pooled: torch.Tensor,
                         beta: torch.Tensor, threshold: torch.Tensor, surrogate: Surrogate, constant: bool,
                         subtract: bool, kind: str, dims: tuple[int, ...]) -> torch.Tensor:
    """dL/dI of :func:`lif_pool_kernel` from dL/d(pooled spikes): the pool's gradient (to the
    first spike of a max window, or a 1/n share of an average) and the LIF's, in one pass."""
    sizes = tuple(mem_all.shape[d] for d in dims)
    spread = _spread(grad_pooled, dims, sizes)
    pos, inside = _window_position(dims, sizes, mem_all.device)
    if kind == "avg":
        grad_spikes = torch.where(inside, spread / 2 ** len(dims), 0.0)
    else:
        grad_spikes = torch.where(inside & (_spread(position, dims, sizes) == pos), spread, 0.0)
    local = surrogate.grad(mem_all - threshold) * grad_spikes
    return _grad_over_time(local, mem_all, beta, threshold, constant, subtract)


class _Kernels(torch.autograd.Function):
    """A LIF layer (and optionally its pool) through the compiled kernels.

    Inputs as :func:`lif_kernel` plus the surrogate and ``pool`` (None or (kind, dims)).
    Outputs: spikes, pooled or not, and the membranes (no gradient).
    """

    @staticmethod
    def forward(ctx, current, beta, threshold, surrogate, steps, constant, subtract, pool):
        if pool is None:
            out, mem = engine.run_kernel(lif_kernel, current, beta, threshold, steps, constant, subtract)
            position = None
        elif pool[0] == "max":
            out, position, mem = engine.run_kernel(lif_pool_kernel, current, beta, threshold, steps, constant,
                                                   subtract, *pool)
        else:
            (out, mem), position = engine.run_kernel(lif_pool_kernel, current, beta, threshold, steps, constant,
                                                     subtract, *pool), None
        ctx.save_for_backward(mem, position, beta, threshold)
        ctx.options = (surrogate, constant, subtract, pool)
        ctx.mark_non_differentiable(mem)
        ctx.set_materialize_grads(False)
        return out, mem

    @staticmethod
    def backward(ctx, grad_out, _grad_mem):
        if grad_out is None:
            return (None,) * 8
        mem, position, beta, threshold = ctx.saved_tensors
        surrogate, constant, subtract, pool = ctx.options
        grad_out = grad_out.contiguous()
        if pool is None:
            grad = engine.run_kernel(lif_kernel_grad, mem, grad_out, beta, threshold, surrogate, constant, subtract)
        else:
            grad = engine.run_kernel(lif_pool_kernel_grad, mem, position, grad_out, beta, threshold, surrogate,
                                     constant, subtract, *pool)
        return (grad,) + (None,) * 7


def _pool_kind(pool: nn.Module, dims: int) -> str | None:
    """"max" or "avg" if ``pool`` is a 2-wide, stride-2, unpadded pool over ``dims`` spatial
    dimensions that :func:`lif_pool_kernel` reproduces exactly; else None."""
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
        reset: "subtract" (soft reset) or "zero" (hard reset).
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
            spk = pool(spk.reshape(T * spk.shape[1], *spk.shape[2:]))
            spk = spk.reshape(T, -1, *spk.shape[1:])
        return spk

    def _kernels_apply(self, cur: torch.Tensor) -> bool:
        """The compiled kernels cover fixed leak and threshold, in float32."""
        return not (self.beta.requires_grad or self.threshold.requires_grad) and cur.dtype == torch.float32

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
            out, mem = _Kernels.apply(cur, beta, threshold, self.surrogate, T, constant, subtract, spec)
        else:
            with torch.no_grad():
                if spec is None:
                    out, mem = engine.run_kernel(lif_kernel, cur, beta, threshold, T, constant, subtract)
                else:
                    res = engine.run_kernel(lif_pool_kernel, cur, beta, threshold, T, constant, subtract, *spec)
                    out, mem = res[0], res[-1]
        if maps:  # back to (T, B, C, H, W) views of channels-last steps
            out, mem = out.permute(0, 1, 4, 2, 3), mem.permute(0, 1, 4, 2, 3)
        if self.probe is not None:
            self.probe(self, out, mem)
        return out

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
