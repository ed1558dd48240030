"""Leaky integrate-and-fire (LIF) neurons.

The maths lives in two pure functions and one thin module:

* :func:`lif_step` advances one time step: ``(current, state, params) -> (spikes, state)``.
  It is the reference definition, written with ordinary autograd ops.
* :func:`lif_sequence` runs a whole sequence (T, B, ...) at once with a hand-written
  backward over time. It gives exactly the spikes and membranes of repeated
  :func:`lif_step` calls and is what models use, because one autograd node for the whole
  recurrence is much cheaper than T small graphs.
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

from .surrogate import Surrogate, get_surrogate

__all__ = ["LIFState", "lif_step", "lif_sequence", "LIF", "RESETS", "check_lif_params"]

RESETS = ("subtract", "zero", "none")


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

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """current (T, B, ...) -> spikes (T, B, ...)."""
        constant = current.stride(0) == 0 and current.shape[0] > 1
        sample_dims = current.dim() - 1
        beta = self._shaped(self.beta.clamp(0, 1), sample_dims)
        threshold = self._shaped(self.threshold, sample_dims)
        keep = self.probe is not None
        if constant:
            spk, mem = lif_sequence(current[0], beta, threshold, self.surrogate, self.reset, current.shape[0],
                                    keep_membranes=keep)
        else:
            spk, mem = lif_sequence(current, beta, threshold, self.surrogate, self.reset, keep_membranes=keep)
        if keep:
            self.probe(self, spk, mem)
        return spk

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
