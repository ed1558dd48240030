"""Opt-in experiment: a LIF layer whose whole-sequence forward and backward are each one
``torch.compile``'d function, for a compiled training step. Not part of the default engine.

The default engine (:func:`snnkit.neurons.lif_sequence`) runs the LIF recurrence as
about five in-place tensor operations per step, each a pass over a (B, ...) buffer, and its
hand-written backward as one more per step. The compiled variant writes the same recurrence
as one pure function over all T steps; the compiler fuses the unrolled steps into a
single loop over neurons that reads the input current once and writes spikes and
membranes once (and the same for the backward: surrogate, the recurrence over time and,
for a constant current, the sum over steps). Convolutions, pooling, the loss and the
optimizer stay eager.

Numerics. The forward keeps snntorch's order of operations
(``(beta * U + I) - theta * S``, each product and sum rounded on its own), so the spikes
are identical to snntorch's and the default engine's (checked by the benchmark on every
run: a compiler that contracted ``beta * U + I`` into a fused multiply-add would break
the identity, and the benchmark would say so). Gradients agree with the default engine
to rounding (sums over time in another order; about 1e-7 relative).

Scope: subtractive reset, fixed (not learned) leak and threshold, no probes; anything
else raises ``ValueError``::

    fast = compile_lif(model)            # a copy whose LIF layers run compiled
    loss_fn(fast(x), y).backward()
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from snnkit.models import lif_layers
from snnkit.neurons import LIF
from snnkit.surrogate import Surrogate

__all__ = ["lif_forward", "lif_backward", "compile_lif", "CompiledLIF"]


def lif_forward(current: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor, T: int,
                constant: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and membranes (T, B, ...) of a subtractive-reset LIF layer.

    ``current`` is (T, B, ...), or (B, ...) held for T steps when ``constant``; ``beta``
    and ``threshold`` broadcast against (B, ...). Same recurrence and rounding as
    :func:`snnkit.neurons.lif_step`: ``U[t] = (beta U[t-1] + I[t]) - theta S[t-1]``,
    ``S[t] = U[t] > theta``.
    """
    spikes, membranes = [], []
    mem = spk = current  # placeholders; t = 0 sets both
    for t in range(T):
        cur = current if constant else current[t]
        mem = cur if t == 0 else (mem * beta + cur) - spk * threshold
        spk = (mem > threshold).to(mem.dtype)
        spikes.append(spk)
        membranes.append(mem)
    return torch.stack(spikes), torch.stack(membranes)


def lif_backward(membranes: torch.Tensor, grad_spikes: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor,
                 surrogate: Surrogate, constant: bool) -> torch.Tensor:
    """dL/dI from dL/dS (T, B, ...): ``g[t] = dL/dS[t] g'(U[t] - theta) + beta g[t+1]``.

    The reset is detached (as in the default engine), so ``dU[t+1]/dU[t] = beta``. With a
    constant current the gradient is the sum of ``g`` over the steps, (B, ...).
    """
    T = membranes.shape[0]
    local = surrogate.grad(membranes - threshold) * grad_spikes  # (T, B, ...)
    acc = local[T - 1]
    out = [acc]
    total = acc
    for t in range(T - 1, 0, -1):
        acc = local[t - 1] + acc * beta
        out.append(acc)
        total = total + acc
    return total if constant else torch.stack(out[::-1])


_compiled: dict[str, object] = {}


def _fn(name: str, compiled: bool):
    if not compiled:
        return {"forward": lif_forward, "backward": lif_backward}[name]
    if name not in _compiled:
        _compiled[name] = torch.compile(lif_forward if name == "forward" else lif_backward, dynamic=False)
    return _compiled[name]


class _Sequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, beta, threshold, T, constant, surrogate, compiled):
        spk, mem = _fn("forward", compiled)(current, beta, threshold, T, constant)
        ctx.save_for_backward(mem, beta, threshold)
        ctx.constant, ctx.surrogate, ctx.compiled = constant, surrogate, compiled
        ctx.mark_non_differentiable(mem)
        return spk, mem

    @staticmethod
    def backward(ctx, grad_spk, _grad_mem):
        mem, beta, threshold = ctx.saved_tensors
        grad = _fn("backward", ctx.compiled)(mem, grad_spk, beta, threshold, ctx.surrogate, ctx.constant)
        return grad, None, None, None, None, None, None


def _channels_last(x: torch.Tensor, lead: int) -> torch.Tensor:
    """(..., C, H, W) -> (..., H, W, C) view (``lead`` leading dims), contiguous for a
    channels-last input: the compiled loops then run over contiguous memory."""
    return x.permute(*range(lead), lead + 1, lead + 2, lead)


def _channels_first(x: torch.Tensor, lead: int) -> torch.Tensor:
    """Inverse of :func:`_channels_last`: a (..., C, H, W) view of (..., H, W, C) memory."""
    return x.permute(*range(lead), lead + 2, lead, lead + 1)


class _SequenceLast(torch.autograd.Function):
    """:class:`_Sequence` on (B, C, H, W) steps laid out channels-last, as the engine's convs
    write them: computed on (H, W, C) views, returned as channels-last (C, H, W) views, so
    that pooling and the next convolution get the layout they are fastest on."""

    @staticmethod
    def forward(ctx, current, beta, threshold, T, constant, surrogate, compiled):
        lead = 1 if constant else 2
        spk, mem = _fn("forward", compiled)(_channels_last(current, lead), beta, threshold, T, constant)
        ctx.save_for_backward(mem, beta, threshold)
        ctx.constant, ctx.surrogate, ctx.compiled = constant, surrogate, compiled
        return _channels_first(spk, 2)

    @staticmethod
    def backward(ctx, grad_spk):
        mem, beta, threshold = ctx.saved_tensors
        grad = _fn("backward", ctx.compiled)(mem, _channels_last(grad_spk, 2).contiguous(), beta, threshold,
                                             ctx.surrogate, ctx.constant)
        return _channels_first(grad, 1 if ctx.constant else 2), None, None, None, None, None, None


class CompiledLIF(LIF):
    """A :class:`~snnkit.neurons.LIF` whose sequence forward/backward run compiled (see module)."""

    compiled: bool = True

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """current (T, B, ...) -> spikes (T, B, ...)."""
        constant = current.stride(0) == 0 and current.shape[0] > 1
        T, dims = current.shape[0], current.dim() - 1
        beta = self.beta.detach().clamp(0, 1)
        threshold = self.threshold.detach()
        cur = current[0] if constant else current
        grad = torch.is_grad_enabled() and cur.requires_grad
        if dims == 4:  # (B, C, H, W) steps: per-channel parameters broadcast along the last dim
            if not grad:
                with torch.no_grad():
                    spk = _fn("forward", self.compiled)(_channels_last(cur, 1 if constant else 2), beta, threshold,
                                                        T, constant)[0]
                return _channels_first(spk, 2)
            return _SequenceLast.apply(cur, beta, threshold, T, constant, self.surrogate, self.compiled)
        beta, threshold = self._shaped(beta, dims), self._shaped(threshold, dims)
        if not grad:
            with torch.no_grad():
                return _fn("forward", self.compiled)(cur, beta, threshold, T, constant)[0]
        spk, _ = _Sequence.apply(cur, beta, threshold, T, constant, self.surrogate, self.compiled)
        return spk


def compile_lif(model: nn.Module, compiled: bool = True) -> nn.Module:
    """A deep copy of ``model`` whose LIF layers are :class:`CompiledLIF` (``compiled=False``:
    the same pure functions run eagerly, for tests). The model itself is not modified.

    Raises:
        ValueError: a LIF layer with a zero reset, a learned leak or threshold, or a probe.
    """
    out = copy.deepcopy(model)
    for name, layer in lif_layers(out):
        if layer.reset != "subtract" or layer.beta.requires_grad or layer.threshold.requires_grad \
                or layer.probe is not None:
            raise ValueError(f"LIF layer {name!r} (reset={layer.reset!r}, learn_beta={layer.beta.requires_grad}, "
                             f"learn_threshold={layer.threshold.requires_grad}): expected a subtractive reset, fixed "
                             "leak and threshold and no probe")
        layer.__class__ = CompiledLIF
        layer.compiled = compiled
    return out
