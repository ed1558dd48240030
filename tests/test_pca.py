"""Tests for snnkit.pca: agreement with scikit-learn and known-rank layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from snnkit.compress.pca import components_needed, explained_variance, feature_matrix, pca_width


def _low_rank(n_obs: int, c: int, rank: int, noise: float, seed: int) -> torch.Tensor:
    """(n_obs, C) data of the given rank plus isotropic noise, with uneven component scales."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.5, rank)
    z = torch.randn(n_obs, rank, generator=g, dtype=torch.float64) * scales
    mix = torch.randn(rank, c, generator=g, dtype=torch.float64)
    return z @ mix + noise * torch.randn(n_obs, c, generator=g, dtype=torch.float64) + 5.0


def _as_conv(x: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """Inverse of feature_matrix: (N*H*W, C) -> (N, C, H, W)."""
    return x.reshape(n, h, w, -1).permute(0, 3, 1, 2).contiguous()


def test_feature_matrix_moves_channels_last():
    a = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    x = feature_matrix(a)
    assert x.shape == (2 * 4 * 5, 3)
    # Row (n*H + h)*W + w, column c holds a[n, c, h, w].
    n, c, h, w = 1, 2, 3, 4
    assert x[(n * 4 + h) * 5 + w, c] == a[n, c, h, w]
    assert torch.equal(x[0], a[0, :, 0, 0])
    fc = torch.randn(7, 3)
    assert feature_matrix(fc) is fc
    with pytest.raises(ValueError, match=r"\(5,\)"):
        feature_matrix(torch.zeros(5))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_explained_variance_matches_sklearn(seed):
    x = _low_rank(600, 12, rank=5, noise=0.3, seed=seed)
    a = _as_conv(x, 6, 10, 10)
    ratios = explained_variance(a)
    ref = PCA(svd_solver="full").fit(x.numpy()).explained_variance_ratio_
    assert ratios.dtype == torch.float64 and ratios.shape == (12,)
    np.testing.assert_allclose(ratios.numpy(), ref, atol=1e-6)
    assert float(ratios.sum()) == pytest.approx(1.0)
    assert bool((ratios[:-1] >= ratios[1:]).all())


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999])
def test_width_matches_sklearn(seed, threshold):
    x = _low_rank(400, 16, rank=6, noise=0.2, seed=seed)
    ref = PCA(n_components=threshold, svd_solver="full").fit(x.numpy()).n_components_
    assert pca_width(explained_variance(x.float()), threshold) == ref
    assert pca_width(explained_variance(_as_conv(x, 4, 10, 10)), threshold) == ref


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_known_rank_layer(rank):
    n, c, h, w = 8, 20, 6, 6
    g = torch.Generator().manual_seed(rank)
    obs = n * h * w
    # Comparable component scales so that all r components matter at 0.99.
    x = torch.randn(obs, rank, generator=g) @ torch.randn(rank, c, generator=g)
    x = x + 1e-4 * torch.randn(obs, c, generator=g)
    ratios = explained_variance(_as_conv(x, n, h, w))
    assert ratios.shape == (c,)
    assert pca_width(ratios, 0.99) == rank


def test_pca_width_rule():
    r = torch.tensor([0.5, 0.3, 0.15, 0.05])
    assert pca_width(r, 0.5) == 1  # reached exactly: >= threshold
    assert pca_width(r, 0.51) == 2
    assert pca_width(r, 0.8) == 2
    assert pca_width(r, 0.96) == 4
    assert pca_width(r, 1.0) == 4
    assert pca_width(r, 1e-9) == 1
    # Round-off making the total slightly below 1 must not give a width > C.
    assert pca_width(torch.tensor([0.7, 0.3 - 1e-15]), 1.0) == 2


def test_zero_variance():
    a = torch.full((4, 6, 3, 3), 2.5)
    ratios = explained_variance(a)
    assert torch.equal(ratios, torch.zeros(6, dtype=torch.float64))
    assert pca_width(ratios, 0.9) == 1
    assert pca_width(explained_variance(torch.randn(1, 5)), 0.9) == 1  # one observation
    assert components_needed(torch.zeros(0, dtype=torch.float64), 0.9) == 1


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan"), "high"])
def test_bad_threshold_raises(bad):
    with pytest.raises(ValueError) as exc:
        pca_width(torch.tensor([1.0]), bad)
    assert repr(bad) in str(exc.value) and "(0, 1]" in str(exc.value)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        components_needed(torch.tensor([1.0]), bad)


def test_components_needed_reads_a_cumulative_curve():
    curve = torch.cumsum(torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64), 0)
    assert [components_needed(curve, t) for t in (0.5, 0.51, 0.8, 0.96, 1.0)] == [1, 2, 2, 4, 4]
    assert components_needed(curve, 0.8) == pca_width(torch.tensor([0.5, 0.3, 0.15, 0.05]), 0.8)
