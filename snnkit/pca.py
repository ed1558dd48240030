"""PCA width criterion for shrinking SNN layers.

Chowdhury, Garg and Roy (2021) choose each layer's new width from the
principal components of its activity: the membrane potential of every neuron,
accumulated over the ``T`` time steps and averaged, is recorded for a batch of
inputs; channels are the features and (sample, spatial position) pairs are the
observations. The layer keeps as many channels as principal components are
needed to explain a given fraction of the variance.

Recording the potentials belongs to the engine; this module takes the recorded
tensors and returns the widths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import Tensor

__all__ = ["PCAResult", "explained_variance", "feature_matrix", "pca_width", "pca_widths"]


def feature_matrix(a: Tensor) -> Tensor:
    """Arrange a layer's activity as observations x features with channels as features.

    Args:
        a: activity of shape ``(N, C, H, W)`` (conv layer), ``(N, C, *spatial)``
            in general, or ``(N, C)`` (fully connected layer).

    Returns:
        ``(N*H*W, C)`` for conv activity (row ``(n*H + h)*W + w`` holds
        ``a[n, :, h, w]``); a 2-D input is returned unchanged.

    Raises:
        ValueError: if ``a`` has fewer than 2 dimensions.
    """
    if a.dim() < 2:
        raise ValueError(f"activity must have shape (N, C) or (N, C, *spatial), got shape {tuple(a.shape)}")
    if a.dim() == 2:
        return a
    # Channels last, then every (sample, position) pair becomes one observation.
    return a.movedim(1, -1).reshape(-1, a.shape[1])


def explained_variance(a: Tensor) -> Tensor:
    """Explained-variance ratios of the principal components of a layer's activity.

    Computed from the eigenvalues of the ``C x C`` covariance of the centred
    feature matrix in float64: ``C`` (channels) is small while ``N*H*W`` can be
    large, so this is much cheaper than an SVD of the data, and float64 keeps
    the ratios accurate to well below 1e-6.

    Args:
        a: activity, any shape accepted by :func:`feature_matrix`.

    Returns:
        float64 tensor of shape ``(C,)``, descending, summing to 1. All zeros
        when the activity has no variance (constant input or a single observation).

    Raises:
        ValueError: if there are no observations.
    """
    x = feature_matrix(a).detach().to(torch.float64)
    n, c = x.shape
    if n == 0:
        raise ValueError(f"need at least one observation, got feature matrix of shape {(n, c)}")
    x = x - x.mean(dim=0, keepdim=True)
    # The 1/(n-1) factor cancels in the ratios, so X^T X is enough.
    cov = x.T @ x
    eig = torch.linalg.eigvalsh(cov).flip(0).clamp_min(0.0)  # round-off can give tiny negatives
    total = eig.sum()
    if total <= 0:
        return torch.zeros(c, dtype=torch.float64)
    return eig / total


def _check_threshold(threshold: object) -> float:
    """Return ``threshold`` as a float or raise ValueError unless it lies in (0, 1]."""
    try:
        t = float(threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}") from None
    if not 0.0 < t <= 1.0:  # also rejects NaN
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    return t


def pca_width(ratios: Tensor, threshold: float) -> int:
    """Number of principal components needed to explain ``threshold`` of the variance.

    Args:
        ratios: explained-variance ratios, descending, shape ``(C,)``.
        threshold: fraction of variance to keep, in (0, 1].

    Returns:
        The smallest ``k >= 1`` with ``sum(ratios[:k]) >= threshold``, capped at
        ``C`` (the cumulative sum can end just below 1.0 by round-off). 1 for
        all-zero ratios (a layer without variance still needs one channel).

    Raises:
        ValueError: if ``threshold`` is not in (0, 1].
    """
    t = _check_threshold(threshold)
    r = ratios.detach().to(torch.float64).reshape(-1)
    if r.numel() == 0 or r.sum() <= 0:
        return 1
    cum = torch.cumsum(r, dim=0)
    # Count of prefixes still below the threshold, plus the one that reaches it.
    k = int(torch.searchsorted(cum, torch.tensor([t], dtype=torch.float64), side="left").item()) + 1
    return min(k, r.numel())


@dataclass
class PCAResult:
    """Widths chosen by :func:`pca_widths`.

    Attributes:
        widths: layer name -> number of channels to keep.
        original: layer name -> current number of channels ``C``.
        curves: layer name -> cumulative explained variance, float64 shape ``(C,)``
            (``curves[name][k-1]`` is the variance fraction kept with ``k`` channels).
        threshold: variance fraction used, in (0, 1].
    """

    widths: dict[str, int]
    original: dict[str, int]
    curves: dict[str, Tensor] = field(repr=False)
    threshold: float

    @property
    def ratio(self) -> float:
        """Fraction of channels kept over all layers, ``sum(widths) / sum(original)`` (1.0 if empty)."""
        total = sum(self.original.values())
        return sum(self.widths.values()) / total if total else 1.0

    def layer_ratios(self) -> dict[str, float]:
        """Per-layer fraction of channels kept, ``widths[name] / original[name]``."""
        return {k: self.widths[k] / self.original[k] for k in self.widths}


def pca_widths(features: Mapping[str, Tensor], threshold: float) -> PCAResult:
    """Apply the PCA width criterion to every recorded layer.

    Args:
        features: layer name -> averaged accumulated membrane potential, shape
            ``(N, C, H, W)`` or ``(N, C)``; the order is kept in the result.
        threshold: fraction of variance to explain, in (0, 1].

    Returns:
        A :class:`PCAResult`.

    Raises:
        ValueError: if ``threshold`` is not in (0, 1] or a tensor has a bad shape.
    """
    t = _check_threshold(threshold)
    widths: dict[str, int] = {}
    original: dict[str, int] = {}
    curves: dict[str, Tensor] = {}
    for name, a in features.items():
        ratios = explained_variance(a)
        widths[name] = pca_width(ratios, t)
        original[name] = int(ratios.numel())
        curves[name] = torch.cumsum(ratios, dim=0)
    return PCAResult(widths=widths, original=original, curves=curves, threshold=t)
