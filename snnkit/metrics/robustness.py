"""Accuracy under Gaussian input noise.

Chowdhury, Garg and Roy (2021) report that the pruned SNN is more robust to Gaussian noise
on its input than the unpruned one. :func:`accuracy_under_noise` measures it: noise of
standard deviation ``sigma`` (in pixel-intensity units, inputs in [0, 1]) is added to the
analog image, the result clamped to [0, 1], then encoded as usual. One standard-normal draw
per pixel, seeded, is scaled by every sigma, so the same seed gives the same numbers and
the sigmas differ only in noise strength.
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


def add_noise(x: torch.Tensor, sigma: float, noise: torch.Tensor) -> torch.Tensor:
    """``clamp(x + sigma * noise, 0, 1)`` for static inputs (N, C, H, W) in [0, 1].

    ``noise`` is a standard-normal tensor of ``x``'s shape; ``sigma`` >= 0 (intensity units).
    ``sigma = 0`` returns ``x`` clamped, i.e. unchanged for inputs in [0, 1].
    """
    if not (isinstance(sigma, numbers.Real) and not isinstance(sigma, bool) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma={sigma!r}: expected a finite number >= 0 (pixel-intensity units)")
    if noise.shape != x.shape:
        raise ValueError(f"noise of shape {tuple(noise.shape)}: expected the input's shape {tuple(x.shape)}")
    return (x + float(sigma) * noise).clamp(0.0, 1.0)


def accuracy_under_noise(
    model: nn.Module,
    split: Split,
    sigmas: Sequence[float],
    cfg: TrainConfig,
    seed: int = 0,
) -> dict[float, float]:
    """Accuracy of ``model`` on ``split`` with Gaussian noise added to the analog input.

    Args:
        model: an SNN or ANN taking static images (see :func:`snnkit.train.evaluate`).
        split: a static split, x (N, C, H, W) in [0, 1]; event data are refused.
        sigmas: noise standard deviations, each >= 0, in pixel-intensity units.
        cfg: evaluation settings (T, encoding, batch size, device).
        seed: seeds the noise draw (the same draw is scaled by every sigma).

    Returns:
        ``{sigma: accuracy}`` (fractions in [0, 1]) in the order of ``sigmas``.
    """
    if split.x.dim() != 4:
        raise ValueError(
            f"split.x of shape {tuple(split.x.shape)}: expected static images (N, C, H, W); "
            "Gaussian pixel noise is not defined for event data"
        )
    if len(sigmas) == 0:
        raise ValueError("sigmas=[]: expected at least one noise level, e.g. [0.0, 0.1, 0.2]")
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(split.x.shape, generator=gen, dtype=split.x.dtype)
    out: dict[float, float] = {}
    for sigma in sigmas:
        noisy = Split(add_noise(split.x, sigma, noise), split.y)
        out[float(sigma)] = evaluate(model, noisy, cfg)
    return out
