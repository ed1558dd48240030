"""Unstructured pruning masks that survive training.

A pruned weight is kept the way :mod:`torch.nn.utils.prune` keeps it: the module's
``weight`` parameter becomes ``weight_orig`` (trained as before) and a ``weight_mask``
buffer of 0s and 1s, and a forward pre-hook sets ``module.weight = weight_orig *
weight_mask`` before every forward pass. So a masked weight is exactly zero in every
forward pass, it gets a zero gradient (``d(orig * mask)/d orig = mask``), no optimizer step
can revive it, and :mod:`snnkit.metrics` reads the effective ``weight_orig * weight_mask``
when it counts parameters and sparsity::

    prune_global(snn, 0.5)                       # the 50% smallest |w| over all layers
    prune_global(snn, 0.5)                       # again: half of the REMAINING -> 75% sparse
    prune_layerwise(snn, 0.5, skip="first")      # the same fraction in every layer but the first
    prune_global(snn, 0.2, scores=lamp)          # any importance: {param name: scores}
    fit(snn, data, cfg)                          # masked weights stay 0
    ticket = build(snn.spec, seed=0)             # lottery ticket: early weights, same mask
    apply_masks(ticket, masks_of(snn))              # (or: rewind(snn, early_state_dict))

Weights are named by their parameter name without the ``_orig`` suffix, as in the state
dict of the unpruned model (``"body.layers.0.weight"``); masks and importance scores are
dicts keyed by those names.

Iterating: pruning a masked weight again removes ``sparsity`` of its *remaining* (unmasked)
entries and keeps every entry already removed (:class:`torch.nn.utils.prune.PruningContainer`
restricts the new selection to the entries where the old mask is 1; global pruning does
the same over all layers at once), so rounds of 0.5, 0.5, 0.5 leave a density of
0.5^3 = 0.125 (up to rounding to whole weights).

Copies: ``torch.nn.utils.prune`` leaves ``module.weight`` as a non-leaf tensor (``orig *
mask``), which ``copy.deepcopy`` refuses. Every function here that masks a weight stores a
detached ``module.weight`` instead and adds a small forward hook that detaches it again
after each forward pass (:func:`snnkit.weights.finish_masking`), so masked models can always
be deep-copied and pickled.

How a mask is stored, set, read and removed is :mod:`snnkit.weights`' business
(:func:`apply_masks`, :func:`masks_of`, :func:`remove_masks`, re-exported here); this module
decides *which* weights to mask. The pruning functions modify the model they are given (the
compression methods of :func:`snnkit.compress.compress` call them on their own copy).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from ..weights import (
    Skip, apply_masks, choose_layers, finish_masking, is_masked, layer_of, masks_of, remove_masks, weight_layers,
)

__all__ = [
    "prunable_weights",
    "prune_global",
    "prune_layerwise",
    "masks_of",
    "apply_masks",
    "is_masked",
    "layer_sparsity",
    "layer_density",
    "global_sparsity",
    "remove_masks",
    "rewind",
]


# ---------------------------------------------------------------------------------------
# which weights


def prunable_weights(model: nn.Module, *, skip: Skip = None) -> list[str]:
    """Names of the weights eligible for pruning: every Conv/Linear ``weight`` but ``skip``.

    In module definition order (forward order for snnkit's nets; a ResNet block's shortcut
    comes after its second conv). ``skip``: layer names, ``"first"`` (the layer that sees the
    analog input), ``"last"`` (the output layer), or a predicate ``(name, module) -> bool``, as
    :func:`snnkit.weights.choose_layers` reads it; many papers keep the first and last dense.
    """
    if not weight_layers(model):
        raise ValueError(f"{type(model).__name__} has no Conv or Linear layer to prune")
    return [f"{n}.weight" for n, _ in choose_layers(model, skip)]


def _targets(model: nn.Module, names: Sequence[str] | None, skip: Skip) -> list[str]:
    if names is None:
        return prunable_weights(model, skip=skip)
    names = list(names)
    if not names:
        raise ValueError("names=[]: expected at least one parameter name")
    for n in names:
        layer_of(model, n)  # raises if absent
    return names


def _check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"{what}={sparsity!r}: expected a fraction in [0, 1] of the remaining weights")
    return float(sparsity)


def _scores(model: nn.Module, names: list[str], scores: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    """Check ``scores`` against the weights they score; returns ``{name: scores}`` for those given."""
    if scores is None:
        return {}
    unknown = sorted(set(scores) - set(names))
    if unknown:
        raise ValueError(f"scores for {unknown}: not among the weights being pruned {names}")
    out = {}
    for n, s in scores.items():
        module, p = layer_of(model, n)
        shape = getattr(module, p).shape
        if tuple(s.shape) != tuple(shape):
            raise ValueError(f"scores for {n!r} have shape {tuple(s.shape)}; expected {tuple(shape)} (the weight's)")
        out[n] = s.detach()
    return out


# ---------------------------------------------------------------------------------------
# pruning


def prune_global(
    model: nn.Module,
    sparsity: float,
    *,
    scores: Mapping[str, Tensor] | None = None,
    names: Sequence[str] | None = None,
    skip: Skip = None,
) -> dict[str, Tensor]:
    """Mask the ``sparsity`` lowest-scored remaining weights over all eligible layers at once.

    One ranking over every eligible weight (``torch.nn.utils.prune.global_unstructured``
    with ``L1Unstructured``): the layers' sparsities follow from where their scores fall.

    Args:
        model: any module; modified in place.
        sparsity: fraction in [0, 1] of the weights not yet masked (over all eligible layers)
            to mask now; ``round(sparsity * remaining)`` weights are masked.
        scores: importance per weight, ``{name: tensor shaped like the weight}``; their
            absolute values are ranked. A weight missing from the dict is scored by its
            magnitude ``|w|`` (the default for all). Only the entries not yet masked compete.
        names: the weights to prune (default :func:`prunable_weights` without ``skip``).
        skip: layers left alone when ``names`` is not given.

    Returns:
        The masks of the pruned weights after this round, ``{name: 0/1 tensor}``.
    """
    sparsity = _check_sparsity(sparsity)
    names = _targets(model, names, skip)
    given = _scores(model, names, scores)
    params = [layer_of(model, n) for n in names]
    importance = {(m, p): given[n] for n, (m, p) in zip(names, params) if n in given}
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, importance_scores=importance,
                              amount=sparsity)
    for m, _ in params:
        finish_masking(m)
    return {n: getattr(m, p + "_mask").detach().clone() for n, (m, p) in zip(names, params)}


def prune_layerwise(
    model: nn.Module,
    sparsity: float | Mapping[str, float],
    *,
    scores: Mapping[str, Tensor] | None = None,
    names: Sequence[str] | None = None,
    skip: Skip = None,
) -> dict[str, Tensor]:
    """Mask the lowest-scored ``sparsity`` of every eligible layer's remaining weights.

    Each layer is ranked on its own (``torch.nn.utils.prune.l1_unstructured``): with one
    ``sparsity`` every layer ends at the same sparsity ("uniform" pruning).

    Args:
        sparsity: fraction in [0, 1] of each layer's unmasked weights to mask now, or
            ``{name: fraction}`` per weight (then the dict's keys are the weights pruned,
            unless ``names`` is given too).
        scores, names, skip: as :func:`prune_global`.

    Returns:
        The masks of the pruned weights after this round, ``{name: 0/1 tensor}``.
    """
    if isinstance(sparsity, Mapping):
        names = _targets(model, list(sparsity) if names is None else names, skip)
        missing = sorted(set(names) - set(sparsity))
        if missing:
            raise ValueError(f"sparsity has no entry for {missing}; expected one fraction per pruned weight")
        amounts = {n: _check_sparsity(sparsity[n], f"sparsity[{n!r}]") for n in names}
    else:
        names = _targets(model, names, skip)
        amounts = dict.fromkeys(names, _check_sparsity(sparsity))
    given = _scores(model, names, scores)
    out = {}
    for n in names:
        m, p = layer_of(model, n)
        prune.l1_unstructured(m, p, amount=amounts[n], importance_scores=given.get(n))
        finish_masking(m)
        out[n] = getattr(m, p + "_mask").detach().clone()
    return out


# ---------------------------------------------------------------------------------------
# reading masks


def layer_sparsity(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, float]:
    """Fraction of each weight's entries that are masked, in [0, 1].

    ``names`` defaults to every Conv/Linear weight plus any other masked parameter; a
    weight without a mask has sparsity 0.0. (Counted on the masks: an unmasked weight that
    happens to be zero does not count; :func:`snnkit.weights.count_nonzero` counts zeros.)
    """
    current = masks_of(model)
    if names is None:
        default = [f"{n}.weight" for n, _ in weight_layers(model)]
        names = default + [n for n in current if n not in set(default)]
    out = {}
    for n in names:
        layer_of(model, n)  # raises if absent
        mask = current.get(n)
        out[n] = 0.0 if mask is None else 1.0 - float(mask.sum()) / mask.numel()
    return out


def layer_density(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, float]:
    """Fraction of each weight's entries that are kept: ``1 - layer_sparsity``."""
    return {n: 1.0 - s for n, s in layer_sparsity(model, names).items()}


def global_sparsity(model: nn.Module, names: Sequence[str] | None = None) -> float:
    """Fraction of the entries of the weights ``names`` (as :func:`layer_sparsity`) that are masked."""
    sparsity = layer_sparsity(model, names)
    sizes = {n: getattr(*layer_of(model, n)).numel() for n in sparsity}
    total = sum(sizes.values())
    return sum(sparsity[n] * sizes[n] for n in sparsity) / total if total else 0.0


def rewind(model: nn.Module, state: Mapping[str, Tensor]) -> nn.Module:
    """Load earlier weights ``state`` into ``model`` and keep its current masks; returns it.

    ``state`` is a state dict of the same architecture, taken before pruning
    (``"x.weight"`` keys) or after (``"x.weight_orig"``/``"x.weight_mask"``): every tensor
    is restored (weights, biases, batch-norm statistics, LIF leaks and thresholds) except
    the masks, which stay the model's. Lottery-ticket style rewinding: save
    ``copy.deepcopy(model.state_dict())`` at an early epoch, prune later, rewind, retrain.
    Modifies ``model`` in place.
    """
    current = masks_of(model)
    new = {}
    for key, value in state.items():
        if key.endswith("_mask"):
            continue
        base = key[: -len("_orig")] if key.endswith("_orig") else key
        new[base + "_orig" if base in current else base] = value
    for name, mask in current.items():
        new[name + "_mask"] = mask
    missing = sorted(set(model.state_dict()) - set(new))
    if missing:
        raise ValueError(f"state has no entry for {missing}; expected a state dict of the same architecture")
    model.load_state_dict(new, strict=True)
    with torch.no_grad():
        for name in current:
            m, p = layer_of(model, name)
            setattr(m, p, getattr(m, p + "_orig") * getattr(m, p + "_mask"))
    return model
