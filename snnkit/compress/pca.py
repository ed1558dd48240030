"""PCA widths for shrinking SNN layers: the maths.

Chowdhury, Garg and Roy (2021) choose each layer's new width from the
principal components of its activity: the membrane potential of every neuron,
accumulated over the ``T`` time steps and averaged, is recorded for a batch of
inputs; channels are the features and (sample, spatial position) pairs are the
observations. The layer keeps as many channels as principal components are
needed to explain a given fraction of the variance.

Recording the potentials belongs to :mod:`snnkit.compress.activity`; what
puts the two together is the ``"pca-variance"`` importance of :mod:`snnkit.compress.importance`
(with the ``"variance"`` planner of :mod:`snnkit.compress.planners`). This module
holds the pure maths: recorded tensors in, variance ratios and widths out.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["components_needed", "explained_variance", "feature_matrix", "pca_width"]


def feature_matrix(a: Tensor) -> Tensor:
    """Arrange a layer's activity as observations x features with channels as features.

    Args:
        a: activity of shape ``(N, C, H, W)`` (conv layer), ``(N, C, L)`` (1-D conv
            layer on sequences: ``(N*L, C)`` out), ``(N, C, *spatial)`` in general, or
            ``(N, C)`` (fully connected layer).

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


def components_needed(cumulative: Tensor, threshold: float) -> int:
    """Smallest ``k >= 1`` with ``cumulative[k-1] >= threshold``, capped at ``C``.

    Args:
        cumulative: cumulative explained-variance ratios, ascending, shape ``(C,)``.
        threshold: fraction of variance to keep, in (0, 1].

    Returns:
        ``k``; ``C`` when the curve ends just below the threshold by round-off; 1 for an
        empty or all-zero curve (a layer without variance still needs one channel).

    Raises:
        ValueError: if ``threshold`` is not in (0, 1].
    """
    t = _check_threshold(threshold)
    cum = cumulative.detach().to(torch.float64).reshape(-1)
    if cum.numel() == 0 or cum[-1] <= 0:
        return 1
    # Count of prefixes still below the threshold, plus the one that reaches it.
    k = int(torch.searchsorted(cum, torch.tensor([t], dtype=torch.float64), side="left").item()) + 1
    return min(k, cum.numel())


def pca_width(ratios: Tensor, threshold: float) -> int:
    """Number of principal components needed to explain ``threshold`` of the variance.

    Args:
        ratios: explained-variance ratios, descending, shape ``(C,)``.
        threshold: fraction of variance to keep, in (0, 1].

    Returns:
        :func:`components_needed` of ``cumsum(ratios)``.

    Raises:
        ValueError: if ``threshold`` is not in (0, 1].
    """
    return components_needed(torch.cumsum(ratios.detach().to(torch.float64).reshape(-1), 0), threshold)
