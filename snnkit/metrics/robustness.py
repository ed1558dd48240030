"""Accuracy under Gaussian input noise.

Chowdhury, Garg and Roy (2021) report that the pruned SNN is more robust to Gaussian noise
on its input than the unpruned one. :func:`accuracy_under_noise` measures it: noise of
standard deviation ``sigma`` (in input units: pixel intensity for images in [0, 1]) is
added to the analog input, the result clamped to the input's range ([0, 1] by default),
then encoded as usual; the noise is a step of encoding (:class:`snnkit.encoding.InputNoise`),
so the evaluation is :func:`snnkit.train.evaluate` itself. Two ways to draw it:

* ``resample="sample"`` (the default): one standard-normal draw per input value, kept over
  the T time steps (frozen noise; an ANN takes only this one);
* ``resample="step"``: a fresh draw at every time step, so an SNN sees T independent noisy
  images (rate input: Bernoulli spikes of each step's noisy intensity; direct input: each
  step's noisy analog image). SNNs with rate or direct encoding only.

The draws are seeded, so the same seed gives the same numbers, and the same draws are
scaled by every sigma, so the sigmas differ only in noise strength.

Images (N, C, H, W) and sequences (N, C, L) alike. Standardized sequences (MNIST-1D's
default scale: mean 0, standard deviation 1) do not live in [0, 1]: pass ``clamp=None``
(then sigma is in units of the data's standard deviation), or load them with
``scale="unit"``. Data outside the clamp range is refused rather than silently clipped.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from ..data import Split
from ..encoding import RESAMPLE, UNIT, InputNoise, _check_clamp, add_noise
from ..train import TrainConfig, evaluate

__all__ = ["RESAMPLE", "UNIT", "add_noise", "accuracy_under_noise"]


def accuracy_under_noise(
    model: nn.Module,
    split: Split,
    sigmas: Sequence[float],
    cfg: TrainConfig,
    seed: int = 0,
    *,
    clamp: tuple[float, float] | None = UNIT,
    resample: str = "sample",
) -> dict[float, float]:
    """Accuracy of ``model`` on ``split`` with Gaussian noise added to the analog input.

    Args:
        model: an SNN or ANN taking static inputs (see :func:`snnkit.train.evaluate`).
        split: a static split, x (N, C, H, W) images or (N, C, L) sequences; event data are
            refused.
        sigmas: noise standard deviations, each >= 0, in input units.
        cfg: evaluation settings (T, encoding, batch size, device).
        seed: seeds the noise draws (the same draws are scaled by every sigma).
        clamp: the range noisy inputs are clamped to, (0, 1) for intensities (the default);
            None for data without a fixed range (standardized sequences).
        resample: ``"sample"``: one draw per input value, the same at every time step;
            ``"step"``: a fresh draw at every time step (SNNs with rate or direct encoding;
            an ANN is refused). See :class:`snnkit.encoding.InputNoise`.

    Returns:
        ``{sigma: accuracy}`` (fractions in [0, 1]) in the order of ``sigmas``; sigma 0 is
        the clean accuracy.

    Raises:
        ValueError: event data, no sigma, an unknown ``resample``, ``resample="step"`` for an
            ANN, or inputs outside ``clamp`` (clamping would change the clean data too; the
            message says what to pass).
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
    noises = [InputNoise(sigma, resample=resample, clamp=bounds, seed=seed) for sigma in sigmas]  # checks them all first
    return {noise.sigma: evaluate(model, split, cfg, noise=noise) for noise in noises}
