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
remaining weights (the masks come from :mod:`snnkit.compress.masks`).

Weights already pruned (zero) score 0 and do not change the other weights' scores, since
they add nothing to any sum. Ties are broken by position (a stable sort): of two equal
weights the earlier one in ``weight.flatten()`` scores lower.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .masks import prunable_weights

__all__ = ["effective_weight", "lamp_importance", "lamp_scores"]


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


def effective_weight(model: nn.Module, name: str) -> torch.Tensor:
    """The weight ``name`` (e.g. ``"body.layers.0.weight"``) as the forward pass uses it.

    For a masked weight (``weight_orig`` and ``weight_mask``, see
    :mod:`snnkit.compress.masks`) that is ``weight_orig * weight_mask``, read from the stored
    tensors rather than from ``module.weight``, which is only refreshed at the next forward
    pass (after an optimizer step it still holds the previous values).
    """
    mname, _, p = name.rpartition(".")
    try:
        module = model.get_submodule(mname)
    except AttributeError:
        module = None
    if module is not None and hasattr(module, p + "_mask") and hasattr(module, p + "_orig"):
        return (getattr(module, p + "_orig") * getattr(module, p + "_mask")).detach()
    w = getattr(module, p, None) if module is not None else None
    if not isinstance(w, torch.Tensor):
        raise ValueError(f"{name!r} is not a weight of the model; expected a parameter name such as "
                         f"'body.layers.0.weight'")
    return w.detach()


def lamp_importance(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """LAMP scores of the weights ``names`` of ``model`` (default: every Conv2d and Linear weight).

    Each weight is scored on its effective (masked) values, so the entries already pruned
    score 0 and add nothing to the others' denominators. Returns ``{name: scores}`` shaped
    like the weights: the ``scores=`` argument of :func:`snnkit.compress.masks.prune_global`,
    whose one global threshold then removes a fraction of the remaining weights.
    """
    names = prunable_weights(model) if names is None else list(names)
    return {n: lamp_scores(effective_weight(model, n)) for n in names}
