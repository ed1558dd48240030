"""QP-SNN (Wei et al. 2025): the vanilla uniform quantizer, ReScaW, and bit-width utilisation.

Both quantize onto the grid ``W_hat = (2/s) round((s/2)(x + 1)) - 1`` on [-1, 1] with
``s = 2^b - 1``: ``2^b`` levels ``2k/s - 1`` (k = 0..s), i.e. the odd codes ``-s, -s+2,
.., s`` times ``1/s``. There is no zero level. The vanilla quantizer feeds it the weight
itself (clamped to [-1, 1]); ReScaW feeds it ``W / gamma`` and scales back by ``gamma``,
one ``gamma`` per output channel, so that the grid spans the weights actually present.
The gradient is straight-through over clamp and round alike: ``dW_hat / dW = 1``
(ReScaW: ``gamma * d(W / gamma) / dW = 1``), so weights beyond the clipping range keep
learning (with ``gamma = mean|W|`` about 40 % of the weights lie beyond it at any time).
"""
from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import Tensor, nn

from ...weights import QUANTIZERS, QuantRecord, WeightQuantizer, check_bits, effective_weight, quant_records
from .grid import _check_float, _reduce_dims

__all__ = [
    "RESCALE_RULES", "ReScaWQuantizer", "VanillaQuantizer", "bit_utilization", "grid_input", "level_codes",
    "qpsnn_codes", "rescale_gamma", "utilization", "utilization_estimate", "vanilla_quantize",
]


#: How ReScaW sets ``gamma`` per output channel: ``"mean"`` |W| (the paper's default),
#: ``"max"`` |W| (no clipping), or a ``"percentile"`` of |W|.
RESCALE_RULES = ("mean", "max", "percentile")


def qpsnn_codes(bits: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The ``2^b`` odd codes ``-s, -s+2, .., s`` (``s = 2^b - 1``) of QP-SNN's grid, ascending.

    Times the scale ``1/s`` they give the levels ``2k/s - 1``, k = 0..s: ``{-1, 1}`` at one
    bit, ``{-1, -1/3, 1/3, 1}`` at two.
    """
    s = 2 ** check_bits(bits) - 1
    return torch.arange(-s, s + 1, 2, dtype=dtype, device=device)


def vanilla_quantize(w: Tensor, bits: int) -> Tensor:
    """QP-SNN's uniform quantizer: ``(2/s) round((s/2)(clamp(w, -1, 1) + 1)) - 1``, ``s = 2^b - 1``.

    Every value lands on one of the ``2^b`` levels ``2k/s - 1`` of [-1, 1] (no gradient;
    :class:`VanillaQuantizer` adds the straight-through one). Round half to even.
    """
    _check_float(w)
    s = 2 ** check_bits(bits) - 1
    return (2.0 / s) * torch.round((s / 2.0) * (w.clamp(-1.0, 1.0) + 1.0)) - 1.0


def rescale_gamma(w: Tensor, rule: str = "mean", *, per_channel: bool = True, axis: int = 0,
                  percentile: float = 99.0) -> Tensor:
    """ReScaW's ``gamma``: ``mean|w|``, ``max|w|`` or the ``percentile`` of ``|w|`` per output
    channel (along ``axis``) or for the whole tensor; detached, broadcastable against ``w``.

    A channel of zeros gets ``gamma = 1``, so that nothing is divided by zero (its weights
    then sit on a level nearest 0: the grid has no zero level).
    """
    if rule not in RESCALE_RULES:
        raise ValueError(f"rescale rule {rule!r}: expected one of {', '.join(RESCALE_RULES)}")
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real) or not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile!r}: expected a number in (0, 100]")
    _check_float(w)
    a = w.detach().abs()
    dims = _reduce_dims(a, per_channel, axis)
    if rule == "mean":
        g = a.mean(dim=dims, keepdim=True) if dims else a.clone()
    elif rule == "max":
        g = a.amax(dim=dims, keepdim=True) if dims else a.clone()
    else:
        moved = a.movedim(axis % a.dim(), 0).flatten(1) if per_channel and a.dim() > 0 else a.reshape(1, -1)
        q = torch.quantile(moved.double(), float(percentile) / 100.0, dim=1).to(a.dtype)
        shape = [1] * a.dim()
        if per_channel and a.dim() > 0:
            shape[axis % a.dim()] = -1
        g = q.reshape(shape) if a.dim() > 0 else q.reshape(())
    return torch.where(g > 0, g, torch.ones_like(g))


class _StraightThrough(torch.autograd.Function):
    """Forward: ``value`` exactly; backward: the gradient goes to ``w`` unchanged."""

    @staticmethod
    def forward(ctx, w: Tensor, value: Tensor) -> Tensor:  # noqa: D102
        return value

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        return grad, None


@QUANTIZERS.register("vanilla")
class VanillaQuantizer(WeightQuantizer):
    """QP-SNN's vanilla quantizer (:func:`vanilla_quantize`) with a straight-through gradient.

    A fixed grid on [-1, 1] whatever the weights: trained weights, mostly far smaller than
    1, use few of its levels (:func:`bit_utilization`). One grid for the tensor, so
    ``per_channel`` must be False.
    """

    def __init__(self, weight: Tensor, bits: int, *, per_channel: bool = False, axis: int = 0) -> None:
        if per_channel:
            raise ValueError("per_channel=True: the vanilla quantizer has one fixed grid on [-1, 1]; "
                             "expected per_channel=False (use 'rescaw' for per-channel scales)")
        super().__init__(bits, per_channel=False, axis=axis)

    def forward(self, w: Tensor) -> Tensor:
        return _StraightThrough.apply(w, vanilla_quantize(w.detach(), self.bits))

    def scale(self, w: Tensor | None = None) -> Tensor:
        return torch.tensor(1.0 / (2 ** self.bits - 1))

    def codes(self) -> Tensor:
        return qpsnn_codes(self.bits)


@QUANTIZERS.register("rescaw")
class ReScaWQuantizer(WeightQuantizer):
    """ReScaW (Wei et al. 2025): ``W_hat = gamma * Q(clamp(W / gamma, -1, 1))`` with the
    vanilla grid ``Q`` and ``gamma`` per output channel (:func:`rescale_gamma`).

    ``gamma`` is recomputed from the weight at every forward pass (detached: no gradient
    flows into it) and kept in the buffer ``gamma`` for records and figures. The levels of
    channel c are ``gamma_c (2k/s - 1)``: the scale is ``gamma / s``.

    Args:
        weight: the weight ``gamma`` is first computed from.
        bits: bit width >= 1.
        per_channel: one ``gamma`` per output channel (default) or one for the tensor.
        axis: the output-channel dimension.
        rule: ``"mean"`` (default), ``"max"`` or ``"percentile"`` of ``|W|``.
        percentile: the percentile for ``rule="percentile"``, in (0, 100].
    """

    def __init__(self, weight: Tensor, bits: int, *, per_channel: bool = True, axis: int = 0,
                 rule: str = "mean", percentile: float = 99.0) -> None:
        super().__init__(bits, per_channel=per_channel, axis=axis)
        self.rule, self.percentile = rule, float(percentile)
        self.register_buffer("gamma", rescale_gamma(weight, rule, per_channel=per_channel, axis=axis,
                                                    percentile=percentile).clone())

    def forward(self, w: Tensor) -> Tensor:
        with torch.no_grad():
            g = rescale_gamma(w, self.rule, per_channel=self.per_channel, axis=self.axis, percentile=self.percentile)
            if g.shape == self.gamma.shape:
                self.gamma.copy_(g)
            else:  # the layer was rebuilt with another width
                self.gamma = g.clone()
            value = g * vanilla_quantize(w.detach() / g, self.bits)
        return _StraightThrough.apply(w, value)

    def scale(self, w: Tensor | None = None) -> Tensor:
        g = self.gamma if w is None else rescale_gamma(w, self.rule, per_channel=self.per_channel, axis=self.axis,
                                                       percentile=self.percentile)
        return g / (2 ** self.bits - 1)

    def codes(self) -> Tensor:
        return qpsnn_codes(self.bits)

    def options(self) -> dict[str, Any]:
        return {"rule": self.rule, "percentile": self.percentile}


def level_codes(w_q: Tensor, record: QuantRecord) -> Tensor:
    """The integer code of every entry of a quantized weight: ``round(w_q / scale)``, with
    the record's scale per channel along its axis (same shape as ``w_q``)."""
    scale = record.scale.to(w_q.device, w_q.dtype)
    if record.per_channel and scale.dim() > 0:
        shape = [1] * w_q.dim()
        shape[record.axis % w_q.dim()] = -1
        scale = scale.reshape(shape)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(w_q / safe)


def bit_utilization(w_q: Tensor, record: QuantRecord) -> float:
    """R: the distinct levels a quantized weight uses over the levels its grid has.

    Levels are counted by their codes (:func:`level_codes`), so with one scale per channel
    a level counts as used when any channel uses it. In (0, 1].
    """
    codes = level_codes(w_q.detach(), record)
    return int(torch.unique(codes).numel()) / record.num_levels


def utilization_estimate(x: Tensor, bits: int) -> float:
    """QP-SNN's estimate of R for inputs ``x`` to the [-1, 1] grid: ``(s a + 1) / (s + 1)``
    with ``s = 2^b - 1`` and ``a = max(|P1(x)|, |P99(x)|)`` (capped at 1): the levels inside
    the central 98 % of the values, over all ``2^b``."""
    s = 2 ** check_bits(bits) - 1
    flat = x.detach().double().flatten()
    if flat.numel() == 0:
        raise ValueError("x is empty: expected the weights (in grid units) of a layer")
    p = torch.quantile(flat, torch.tensor([0.01, 0.99], dtype=torch.float64))
    a = min(1.0, float(p.abs().max()))
    return (s * a + 1) / (s + 1)


def utilization(model: nn.Module) -> dict[str, float]:
    """``{quantized layer: R}`` (:func:`bit_utilization` of its effective weight)."""
    records = quant_records(model)
    modules = dict(model.named_modules())
    return {name: bit_utilization(effective_weight(modules[name]), rec) for name, rec in records.items()}


def grid_input(quantizer: WeightQuantizer, w: Tensor) -> Tensor:
    """What a vanilla or ReScaW quantizer feeds its [-1, 1] grid, before clamping: ``w``
    (vanilla) or ``w / gamma`` (ReScaW), detached. For weight histograms against the grid."""
    w = w.detach()
    if isinstance(quantizer, VanillaQuantizer):
        return w
    if isinstance(quantizer, ReScaWQuantizer):
        return w / rescale_gamma(w, quantizer.rule, per_channel=quantizer.per_channel, axis=quantizer.axis,
                                 percentile=quantizer.percentile)
    raise ValueError(f"quantizer {quantizer!r}: expected a 'vanilla' or 'rescaw' one")
