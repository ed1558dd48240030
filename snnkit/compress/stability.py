"""Do a pruning score's channel rankings agree from one input batch to the next?

QP-SNN (Wei et al. 2025) argues that SVS scores are more stable across batches than SCA
scores, and measures it with the cosine similarity of the score vectors. Cosine says little
here: two vectors of positive scores have a cosine near 1 whatever their order. What decides
which channels are cut is the ORDER of the scores, so this module measures agreement by rank:

- :func:`spearman`: the Spearman correlation of two score vectors (ties get their mean rank);
- :func:`topk_overlap`: the fraction of the channels kept on one batch (the top ``k``) that
  are also kept on the other, the quantity that decides the pruned network. Two random
  rankings share ``k / C`` of their top ``k`` on average (chance level = the kept fraction);
- :func:`rank_agreement`: both, averaged over every pair of batches;
- :func:`score_agreement`: an importance scored on several batches of a network, per layer::

      score_agreement(net, [x1, x2, x3], "svs", T=2, keep=0.6)
      # {"body.layers.2": {"spearman": 0.91, "overlap": 0.88}, ...}
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .importance import Inputs, make_importance

__all__ = ["AGREEMENTS", "kept_count", "spearman", "topk_overlap", "rank_agreement", "score_agreement"]

#: The two measures of :func:`rank_agreement`, in the order it returns them.
AGREEMENTS = ("spearman", "overlap")


def _check_vector(name: str, v: Tensor) -> None:
    if v.dim() != 1 or v.numel() < 2:
        raise ValueError(f"{name} of shape {tuple(v.shape)}: expected one score per channel, (C,) with C >= 2")


def _mean_ranks(v: Tensor) -> Tensor:
    """Ranks 0..C-1 of ``v`` (C,) in ascending order, tied values sharing their mean rank."""
    order = torch.argsort(v, stable=True)
    ranks = torch.empty(len(v), dtype=torch.float64)
    ranks[order] = torch.arange(len(v), dtype=torch.float64)
    values, inverse = torch.unique(v, return_inverse=True)
    sums = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, ranks)
    counts = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(ranks))
    return (sums / counts)[inverse]


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two score vectors of the same C channels, in [-1, 1].

    Tied scores share their mean rank (SVS scores, ranks averaged over samples, tie often).
    A constant vector ranks nothing: the correlation with it is 0, or 1 if both are constant.

    Args:
        a, b: (C,) scores, C >= 2.
    """
    _check_vector("a", a)
    _check_vector("b", b)
    if a.shape != b.shape:
        raise ValueError(f"score vectors of shapes {tuple(a.shape)} and {tuple(b.shape)}: expected the same channels")
    ra, rb = _mean_ranks(a.detach().double()), _mean_ranks(b.detach().double())
    da, db = ra - ra.mean(), rb - rb.mean()
    na, nb = da.norm(), db.norm()
    if na == 0 or nb == 0:
        return 1.0 if (na == 0 and nb == 0) else 0.0
    return float((da @ db) / (na * nb))


def _top(v: Tensor, k: int) -> set[int]:
    """The ``k`` highest-scored channels; of tied scores the lower channel index comes first."""
    return set(v.detach().argsort(descending=True, stable=True)[:k].tolist())


def topk_overlap(a: Tensor, b: Tensor, k: int) -> float:
    """Fraction of the ``k`` highest-scored channels of ``a`` that are also among the ``k``
    highest of ``b``, in [0, 1] (1: the two batches keep the same channels).

    Ties are broken by channel index, as the planners break them. Chance level for two
    unrelated rankings is ``k / C``.

    Args:
        a, b: (C,) scores of the same channels.
        k: channels kept, 1 <= k <= C.
    """
    _check_vector("a", a)
    _check_vector("b", b)
    if a.shape != b.shape:
        raise ValueError(f"score vectors of shapes {tuple(a.shape)} and {tuple(b.shape)}: expected the same channels")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(a):
        raise ValueError(f"k={k!r}: expected an integer number of kept channels in [1, {len(a)}]")
    return len(_top(a, k) & _top(b, k)) / k


def kept_count(channels: int, keep: float) -> int:
    """Channels a layer of ``channels`` keeps at the fraction ``keep`` in (0, 1]: the
    rounded product, at least 1."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep={keep!r}: expected a fraction of channels kept in (0, 1]")
    return max(1, round(channels * keep))


def rank_agreement(vectors: Tensor, keep: float) -> dict[str, float]:
    """Mean agreement over every pair of rows of ``vectors`` (K, C), K >= 2 batches.

    Returns:
        ``{"spearman": mean pairwise Spearman correlation, "overlap": mean pairwise overlap
        of the top ``kept_count(C, keep)`` channels}``.
    """
    if vectors.dim() != 2 or vectors.shape[0] < 2:
        raise ValueError(f"score vectors of shape {tuple(vectors.shape)}: expected (K, C) with K >= 2 batches")
    k = kept_count(vectors.shape[1], keep)
    pairs = [(i, j) for i in range(len(vectors)) for j in range(i + 1, len(vectors))]
    return {"spearman": sum(spearman(vectors[i], vectors[j]) for i, j in pairs) / len(pairs),
            "overlap": sum(topk_overlap(vectors[i], vectors[j], k) for i, j in pairs) / len(pairs)}


def score_agreement(
    model: nn.Module,
    batches: Sequence[Tensor],
    importance: str = "svs",
    *,
    T: int,
    keep: float,
    encoding: str = "direct",
    **options,
) -> dict[str, dict[str, float]]:
    """How far an importance's channel RANKINGS agree from one input batch to the next.

    The importance scores every batch on its own; per prunable layer the score vectors are
    compared pair by pair (:func:`rank_agreement`).

    Args:
        model: the trained spiking network.
        batches: two or more input batches, each (B, C, H, W) (or a list of ``(x, y)``).
        importance: an :data:`~snnkit.compress.importance.IMPORTANCES` name.
        T, encoding: how the batches are run.
        keep: fraction of each layer's channels kept, for the top-k overlap.
        options: the importance's options.

    Returns:
        ``{prunable layer: {"spearman": ..., "overlap": ...}}``.
    """
    parts = [b[0] if isinstance(b, (tuple, list)) else b for b in batches]
    if len(parts) < 2:
        raise ValueError(f"{len(parts)} batch(es): expected at least 2 to compare scores across batches")
    imp = make_importance(importance, **options)
    runs = [imp(model, Inputs(b, T=T, encoding=encoding), level="channel") for b in parts]
    return {name: rank_agreement(torch.stack([r.values[i] for r in runs]), keep)
            for i, name in enumerate(runs[0].names)}
