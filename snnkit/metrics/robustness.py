"""Accuracy under Gaussian input noise.

Chowdhury, Garg and Roy (2021) report that the pruned SNN is more robust to Gaussian noise
on its input than the unpruned one. :func:`accuracy_under_noise` measures it: noise of
standard deviation ``sigma`` (in input units: pixel intensity for images in [0, 1]) is
added to the analog input, the result clamped to the input's range ([0, 1] by default),
then encoded as usual. One standard-normal draw per input value, seeded, is scaled by every
sigma, so the same seed gives the same numbers and the sigmas differ only in noise strength.

Images (N, C, H, W) and sequences (N, C, L) alike. Standardized sequences (MNIST-1D's
default scale: mean 0, standard deviation 1) do not live in [0, 1]: pass ``clamp=None``
(then sigma is in units of the data's standard deviation), or load them with
``scale="unit"``. Data outside the clamp range is refused rather than silently clipped.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
from torch import nn

from ..data import Split
from ..train import TrainConfig, evaluate

__all__ = ["add_noise", "accuracy_under_noise"]

#: The range noisy inputs are clamped to by default: intensities.
UNIT = (0.0, 1.0)


def _check_clamp(clamp: tuple[float, float] | None) -> tuple[float, float] | None:
    if clamp is None:
        return None
    try:
        lo, hi = (float(v) for v in clamp)
    except (TypeError, ValueError):
        lo, hi = math.nan, math.nan
    if not lo < hi:
        raise ValueError(f"clamp={clamp!r}: expected None or (low, high) with low < high, e.g. (0.0, 1.0)")
    return lo, hi


def add_noise(x: torch.Tensor, sigma: float, noise: torch.Tensor,
              clamp: tuple[float, float] | None = UNIT) -> torch.Tensor:
    """``clamp(x + sigma * noise, low, high)`` for static inputs (N, C, H, W) or (N, C, L).

    ``noise`` is a standard-normal tensor of ``x``'s shape; ``sigma`` >= 0 (input units).
    ``clamp``: the inputs' range, (0, 1) for intensities; None adds the noise unclamped.
    ``sigma = 0`` returns ``x`` clamped, i.e. unchanged for inputs in the range.
    """
    if not (isinstance(sigma, numbers.Real) and not isinstance(sigma, bool) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma={sigma!r}: expected a finite number >= 0 (input units)")
    if noise.shape != x.shape:
        raise ValueError(f"noise of shape {tuple(noise.shape)}: expected the input's shape {tuple(x.shape)}")
    noisy = x + float(sigma) * noise
    bounds = _check_clamp(clamp)
    return noisy if bounds is None else noisy.clamp(*bounds)


def accuracy_under_noise(
    model: nn.Module,
    split: Split,
    sigmas: Sequence[float],
    cfg: TrainConfig,
    seed: int = 0,
    *,
    clamp: tuple[float, float] | None = UNIT,
) -> dict[float, float]:
    """Accuracy of ``model`` on ``split`` with Gaussian noise added to the analog input.

    Args:
        model: an SNN or ANN taking static inputs (see :func:`snnkit.train.evaluate`).
        split: a static split, x (N, C, H, W) images or (N, C, L) sequences; event data are
            refused.
        sigmas: noise standard deviations, each >= 0, in input units.
        cfg: evaluation settings (T, encoding, batch size, device).
        seed: seeds the noise draw (the same draw is scaled by every sigma).
        clamp: the range noisy inputs are clamped to, (0, 1) for intensities (the default);
            None for data without a fixed range (standardized sequences).

    Returns:
        ``{sigma: accuracy}`` (fractions in [0, 1]) in the order of ``sigmas``.

    Raises:
        ValueError: event data, no sigma, or inputs outside ``clamp`` (clamping would change
            the clean data too; the message says what to pass).
    """
    if split.x.dim() not in (3, 4):
        raise ValueError(
            f"split.x of shape {tuple(split.x.shape)}: expected static images (N, C, H, W) or sequences "
            "(N, C, L); Gaussian input noise is not defined for event data"
        )
    if len(sigmas) == 0:
        raise ValueError("sigmas=[]: expected at least one noise level, e.g. [0.0, 0.1, 0.2]")
    bounds = _check_clamp(clamp)
    if bounds is not None and split.x.numel():
        lo, hi = float(split.x.min()), float(split.x.max())
        if lo < bounds[0] or hi > bounds[1]:
            raise ValueError(
                f"split.x spans [{lo:.3g}, {hi:.3g}], outside clamp={bounds}: clamping the noisy inputs would "
                "change the clean data too; pass clamp=None for standardized data (MNIST-1D's default scale) "
                "or the data's own range, or load inputs in [0, 1] (e.g. load_dataset('mnist1d', scale='unit'))"
            )
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(split.x.shape, generator=gen, dtype=split.x.dtype)
    out: dict[float, float] = {}
    for sigma in sigmas:
        noisy = Split(add_noise(split.x, sigma, noise, bounds), split.y)
        out[float(sigma)] = evaluate(model, noisy, cfg)
    return out
