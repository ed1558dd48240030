"""Layer-adaptive magnitude pruning (LAMP) scores.

Lee, Park, Mo, Ahn and Shin (ICLR 2021) score each weight by its squared magnitude
relative to the weights of its layer that are at least as large. Sort the weights of one
layer by magnitude, ascending, ``|w_1| <= |w_2| <= ... <= |w_n|``; the score of weight
``u`` is::

    score(u) = w_u^2 / sum_{v >= u} w_v^2

The largest weight of every layer scores exactly 1 and every other score is below 1, so a
single global threshold over all layers' scores never empties a layer; how many weights a
layer loses follows from how its magnitudes are spread, not from their scale. Gou et al.
(2025) prune SNNs with it: each round, one global threshold removes a fraction of the
remaining weights (the ``"lamp"`` importance of :mod:`snnkit.compress.importance` scores a
model's effective weights with :func:`lamp_scores`; the masks come from
:mod:`snnkit.compress.masks`).

Weights already pruned (zero) score 0 and do not change the other weights' scores, since
they add nothing to any sum. Ties are broken by position (a stable sort): of two equal
weights the earlier one in ``weight.flatten()`` scores lower.
"""
from __future__ import annotations

import torch


__all__ = ["lamp_scores"]


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP score of every entry of one layer's weight tensor.

    Args:
        weight: any shape, e.g. ``(C_out, C_in, kH, kW)`` or ``(out, in)``; pruned
            entries should be zero (pass ``weight * mask``).

    Returns:
        A float tensor of ``weight``'s shape with scores in ``[0, 1]`` (computed in
        float64): ``w_u^2 / sum_{v >= u} w_v^2`` in ascending order of magnitude; the
        largest entry scores 1, zeros score 0 (an all-zero tensor scores 0 everywhere).
    """
    if not isinstance(weight, torch.Tensor):
        raise ValueError(f"weight={weight!r}: expected a torch.Tensor")
    if weight.numel() == 0:
        raise ValueError(f"weight of shape {tuple(weight.shape)}: expected at least one entry")
    w2 = weight.detach().flatten().double() ** 2
    order = torch.argsort(w2, stable=True)
    sorted_w2 = w2[order]
    # suffix sums: tail[u] = sum_{v >= u} sorted_w2[v]
    tail = sorted_w2.flip(0).cumsum(0).flip(0)
    ratio = torch.where(tail > 0, sorted_w2 / tail.clamp_min(torch.finfo(torch.float64).tiny),
                        torch.zeros_like(tail))
    scores = torch.empty_like(ratio)
    scores[order] = ratio
    return scores.view(weight.shape).to(weight.dtype if weight.is_floating_point() else torch.float64)
