"""Surrogate gradients for the spike non-linearity.

The forward pass of a spike is the Heaviside step ``S = H(x)`` with ``x = U - theta``
(a spike when the membrane *exceeds* the threshold, as in snntorch). Its derivative is
zero almost everywhere, so training replaces it in the backward pass by a smooth
"surrogate" ``dS/dx ~ g(x)``.

Surrogates here are small picklable objects (not closures): a model that holds one can be
deep-copied, pickled and sent to another process. Each has

* ``grad(x)``: the surrogate derivative g(x), used by the hand-written backward of
  :func:`snnkit.neurons.lif_sequence`;
* ``__call__(x)``: the spike ``H(x)`` with ``g`` as its gradient, for ordinary autograd.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .registry import Registry

__all__ = ["Surrogate", "ATan", "FastSigmoid", "Triangular", "SURROGATES", "get_surrogate"]


class _Spike(torch.autograd.Function):
    """Heaviside forward, surrogate backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: "Surrogate") -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class: subclasses define :meth:`grad`."""

    name: str = "?"

    def grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`grad` computed in place in ``x`` (saves a large buffer per layer)."""
        return x.copy_(self.grad(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _Spike.apply(x, self)


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent surrogate, snntorch's default: ``g(x) = (a/2) / (1 + (pi/2 * a * x)^2)``."""

    alpha: float = 2.0
    name = "arctan"

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(math.pi / 2 * self.alpha).square_().add_(1).reciprocal_().mul_(self.alpha / 2)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """Fast-sigmoid surrogate (SuperSpike): ``g(x) = 1 / (slope * |x| + 1)^2``."""

    slope: float = 25.0
    name = "fast-sigmoid"

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (self.slope * x.abs() + 1.0) ** 2

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs_().mul_(self.slope).add_(1.0).square_().reciprocal_()


@dataclass(frozen=True)
class Triangular(Surrogate):
    """Triangular surrogate: ``g(x) = scale * max(0, 1 - |x| / width)``.

    With ``width=a`` and ``scale=1/a`` this is QP-SNN's ``(1/a) max(a - |U - theta|, 0)``;
    ``scale=0.3, width=theta`` gives the ``0.3 max(0, 1 - |U/theta - 1|)`` used by
    attention-guided compression. ``scale=None`` means ``1/width`` (unit area).
    """

    width: float = 1.0
    scale: float | None = None
    name = "triangular"

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / self.width if self.scale is None else self.scale
        return scale * torch.clamp(1.0 - x.abs() / self.width, min=0.0)

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / self.width if self.scale is None else self.scale
        return x.abs_().div_(-self.width).add_(1.0).clamp_(min=0.0).mul_(scale)


#: name -> surrogate class; each class takes its shape parameter as its first argument.
SURROGATES: Registry[type[Surrogate]] = Registry("surrogate")
SURROGATES.register("arctan", ATan)
SURROGATES.register("fast-sigmoid", FastSigmoid)
SURROGATES.register("triangular", Triangular)


def get_surrogate(name: str | Surrogate, param: float | None = None) -> Surrogate:
    """Build a surrogate from its registry name.

    ``param`` is the shape parameter: ``alpha`` for arctan (default 2), ``slope`` for
    fast-sigmoid (default 25), ``width`` for triangular (default 1). An existing
    :class:`Surrogate` is returned unchanged.
    """
    if isinstance(name, Surrogate):
        return name
    cls = SURROGATES.get(name)
    return cls() if param is None else cls(float(param))
