"""The symmetric uniform quantizer as a module (``"uniform"``, ``"uniform-channel"``).

:class:`UniformQuantizer` fits its rounding unit to a weight with a range rule of
:mod:`~snnkit.compress.quant.grid` (least squared error by default), keeps the layer's gain,
and can learn the unit during training (learned step size, Esser et al. 2020).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...weights import QUANTIZERS, WeightQuantizer
from .grid import _units, fake_quantize

__all__ = ["UniformQuantizer", "uniform_channel"]


@QUANTIZERS.register("uniform")
class UniformQuantizer(WeightQuantizer):
    """Symmetric uniform quantizer (:func:`fake_quantize` on :func:`symmetric_codes`).

    Args:
        weight: the weight the scale is fitted to (for a masked layer, the masked weight).
        bits: bit width >= 1 (one bit: sign times ``mean|w|``).
        per_channel: one scale per slice along ``axis``.
        axis: channel dimension (0 for Conv/Linear weights, 1 for transposed convs).
        rule: how the rounding unit is set from ``weight``: ``"mse"`` (:func:`mse_scale`)
            or ``"max"`` (:func:`max_scale`).
        keep_gain: space the levels by :func:`gain_scale` (the layer keeps its gain; the
            default) instead of by the rounding unit (least squares).
        learn_scale: make the rounding unit a parameter (trained with the weights,
            learned step size); otherwise it is a buffer fixed at construction.

    Stored: ``step``, the rounding unit (shape as returned by the rule; its absolute value
    is used, so a learned step cannot flip the grid), and the buffer ``gain``, the fixed
    ratio of the level unit to the rounding unit (1 without ``keep_gain``). The levels are
    ``|step| * gain * codes``.
    """

    def __init__(self, weight: Tensor, bits: int, *, per_channel: bool = False, axis: int = 0,
                 rule: str = "mse", keep_gain: bool = True, learn_scale: bool = False) -> None:
        super().__init__(bits, per_channel=per_channel, axis=axis)
        if not isinstance(learn_scale, bool):
            raise ValueError(f"learn_scale={learn_scale!r}: expected True or False")
        step, unit = _units(weight.detach(), self.bits, per_channel, axis, rule, keep_gain)
        self.rule, self.keep_gain, self.learn_scale = rule, keep_gain, learn_scale
        self.register_buffer("gain", torch.where(step > 0, unit / torch.where(step > 0, step, 1.0), 1.0))
        if learn_scale:
            self.step = nn.Parameter(step.clone())
        else:
            self.register_buffer("step", step.clone())

    def forward(self, w: Tensor) -> Tensor:
        step = self.step.abs()
        return fake_quantize(w, step, self.bits, step * self.gain)

    def scale(self, w: Tensor | None = None) -> Tensor:
        return self.step.abs() * self.gain

    def options(self) -> dict[str, Any]:
        return {"rule": self.rule, "keep_gain": self.keep_gain, "learn_scale": self.learn_scale}


@QUANTIZERS.register("uniform-channel")
def uniform_channel(weight: Tensor, bits: int, *, per_channel: bool = True, axis: int = 0, **options) -> UniformQuantizer:
    """:class:`UniformQuantizer` with one scale per output channel (the default here)."""
    return UniformQuantizer(weight, bits, per_channel=per_channel, axis=axis, **options)
