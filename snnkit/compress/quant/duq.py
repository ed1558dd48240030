"""DuQ: the learned-scale symmetric quantizer of Schaefer, Taheri, Horeni and Joshi (2023)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...weights import QUANTIZERS, WeightQuantizer, check_bits
from .grid import _check_float, round_ste

__all__ = ["DuQQuantizer", "duq_init", "duq_quantize"]


def duq_init(w: Tensor) -> Tensor:
    """``max(|mu - 3 sigma|, |mu + 3 sigma|)`` of a weight tensor: DuQ's initial ``a`` and ``c``.

    ``mu`` and ``sigma`` are the mean and the (population) standard deviation of all entries,
    computed in float64; returned as a 0-D tensor in ``w``'s dtype.
    """
    _check_float(w)
    wd = w.detach().double()
    mu, sigma = wd.mean(), wd.std(unbiased=False) if wd.numel() > 1 else wd.new_zeros(())
    return torch.maximum((mu - 3 * sigma).abs(), (mu + 3 * sigma).abs()).to(w.dtype)


def duq_quantize(w: Tensor, a: Tensor, c: Tensor, bits: int) -> Tensor:
    """``c * round(hardtanh(w / a) * (n - 1)) / (n - 1)`` with ``n = 2^(bits - 1)``.

    The input range ``a`` and the output range ``c`` are used by magnitude (``|a|``,
    ``|c|``), so the grid cannot flip sign. The levels are ``c k / (n - 1)`` for the
    integers ``|k| <= n - 1``: ``2^bits - 1`` of them, ``{-c, 0, +c}`` at 2 bits. Rounding
    has a straight-through gradient (:func:`round_ste`); ``hardtanh`` passes the gradient
    inside ``[-a, a]`` and none outside, and ``a`` and ``c`` get theirs through the formula.

    Args:
        w: weight, any shape (float).
        a, c: 0-D tensors (or broadcastable against ``w``), both non-zero.
        bits: bit width >= 2 (at one bit ``n - 1 = 0`` and the grid is empty).
    """
    bits = check_bits(bits)
    if bits < 2:
        raise ValueError(f"bits={bits}: DuQ needs bits >= 2 (n - 1 = 2^(bits-1) - 1 levels per side is 0 at one bit)")
    steps = 2 ** (bits - 1) - 1  # n - 1
    return c.abs() * round_ste(torch.nn.functional.hardtanh(w / a.abs()) * steps) / steps


@QUANTIZERS.register("duq")
class DuQQuantizer(WeightQuantizer):
    """Learned-scale symmetric quantizer of Schaefer et al. (2023), one ``a`` and ``c`` per layer.

    ``w_q = c * round(hardtanh(w / a) * (n - 1)) / (n - 1)``, ``n = 2^(bits - 1)``
    (:func:`duq_quantize`). Both ``a`` (the input range: weights beyond ``+-a`` are clipped)
    and ``c`` (the output range: the largest level) start at ``max(|mu - 3 sigma|,
    |mu + 3 sigma|)`` of the weight the quantizer is fitted to (:func:`duq_init`; for a
    masked layer, the masked weight, zeros included) and are trained with the weights.

    Args:
        weight: the weight ``a`` and ``c`` are initialised from.
        bits: bit width >= 2 (2 bits: ternary ``{-c, 0, +c}``).
        per_channel: must be False (one ``a`` and one ``c`` per layer).
        axis: accepted for the common signature; unused.
        learn_scale: ``a`` and ``c`` are parameters (default) or fixed buffers.

    Raises:
        ValueError: bits below 2, ``per_channel=True``, or an all-zero weight (no range).
    """

    def __init__(self, weight: Tensor, bits: int, *, per_channel: bool = False, axis: int = 0,
                 learn_scale: bool = True) -> None:
        super().__init__(bits, per_channel=per_channel, axis=axis)
        if self.bits < 2:
            raise ValueError(f"bits={self.bits}: DuQ needs bits >= 2 (2 bits is ternary)")
        if per_channel:
            raise ValueError("per_channel=True: DuQ learns one a and one c per layer; expected per_channel=False")
        if not isinstance(learn_scale, bool):
            raise ValueError(f"learn_scale={learn_scale!r}: expected True or False")
        init = duq_init(weight)
        if not bool(init > 0):
            raise ValueError("DuQ cannot be fitted to an all-zero weight: its range mu +- 3 sigma is 0")
        self.learn_scale = learn_scale
        for name in ("a", "c"):
            if learn_scale:
                setattr(self, name, nn.Parameter(init.clone()))
            else:
                self.register_buffer(name, init.clone())

    def forward(self, w: Tensor) -> Tensor:
        return duq_quantize(w, self.a, self.c, self.bits)

    def scale(self, w: Tensor | None = None) -> Tensor:
        """The grid unit ``|c| / (n - 1)``."""
        return self.c.abs() / (2 ** (self.bits - 1) - 1)

    def options(self) -> dict[str, Any]:
        return {"learn_scale": self.learn_scale}
