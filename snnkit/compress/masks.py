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
    prune_layerwise(snn, 0.5, skip_first=True)   # the same fraction in every layer
    prune_global(snn, 0.2, scores=lamp)          # any importance: {param name: scores}
    fit(snn, data, cfg)                          # masked weights stay 0
    ticket = build(snn.spec, seed=0)             # lottery ticket: early weights, same mask
    apply_masks(ticket, masks_of(snn))              # (or: rewind(snn, early_state_dict))

Weights are named by their parameter name without the ``_orig`` suffix, as in the state
dict of the unpruned model (``"body.layers.0.weight"``); masks and importance scores are
dicts keyed by those names.

Iterating: pruning a masked weight again removes ``amount`` of its *remaining* (unmasked)
entries and keeps every entry already removed (:class:`torch.nn.utils.prune.PruningContainer`
restricts the new selection to the entries where the old mask is 1; global pruning does
the same over all layers at once), so rounds of 0.5, 0.5, 0.5 leave a density of
0.5^3 = 0.125 (up to rounding to whole weights).

Copies: ``torch.nn.utils.prune`` leaves ``module.weight`` as a non-leaf tensor (``orig *
mask``), which ``copy.deepcopy`` refuses. Every function here that masks a weight stores a
detached ``module.weight`` instead and adds a small forward hook that detaches it again
after each forward pass, so masked models can always be deep-copied and pickled.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

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

_LAYERS = (nn.Conv2d, nn.Linear)


# ---------------------------------------------------------------------------------------
# names and lookup


def _split(name: str) -> tuple[str, str]:
    """``"body.layers.0.weight"`` -> (``"body.layers.0"``, ``"weight"``)."""
    module, _, param = name.rpartition(".")
    return module, param


def _module(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module that owns the (possibly masked) parameter ``name``, and the short name."""
    mname, pname = _split(name)
    modules = dict(model.named_modules())
    module = modules.get(mname)
    if module is None or not (pname in module._parameters or hasattr(module, pname + "_orig")):
        raise ValueError(f"parameter {name!r} is not in the model; expected e.g. {prunable_weights(model)[:3]}")
    return module, pname


def _masked(module: nn.Module) -> list[str]:
    """Short names of the parameters of ``module`` that carry a pruning mask."""
    return [h._tensor_name for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]


def is_masked(model: nn.Module) -> bool:
    """True if any parameter of ``model`` carries a pruning mask."""
    return any(_masked(m) for m in model.modules())


def prunable_weights(model: nn.Module, *, skip_first: bool = False, skip_last: bool = False) -> list[str]:
    """Names of the weights eligible for pruning: every Conv2d and Linear ``weight``.

    In module definition order (forward order for snnkit's nets; a ResNet block's shortcut
    comes after its second conv). ``skip_first`` drops the first one (the layer that sees
    the analog input), ``skip_last`` the last one (the output layer), as many papers keep
    those dense.
    """
    names = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, _LAYERS)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to prune")
    names = names[1:] if skip_first else names
    names = names[:-1] if skip_last else names
    if not names:
        raise ValueError(f"skip_first={skip_first}, skip_last={skip_last} leave no layer to prune")
    return names


def _targets(model: nn.Module, names: Sequence[str] | None, skip_first: bool, skip_last: bool) -> list[str]:
    if names is None:
        return prunable_weights(model, skip_first=skip_first, skip_last=skip_last)
    names = list(names)
    if not names:
        raise ValueError("names=[]: expected at least one parameter name")
    for n in names:
        _module(model, n)  # raises if absent
    return names


def _check_amount(amount: float, what: str = "amount") -> float:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"{what}={amount!r}: expected a fraction in [0, 1] of the remaining weights")
    return float(amount)


def _scores(model: nn.Module, names: list[str], scores: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    """Check ``scores`` against the weights they score; returns ``{name: scores}`` for those given."""
    if scores is None:
        return {}
    unknown = sorted(set(scores) - set(names))
    if unknown:
        raise ValueError(f"scores for {unknown}: not among the weights being pruned {names}")
    out = {}
    for n, s in scores.items():
        module, p = _module(model, n)
        shape = getattr(module, p).shape
        if tuple(s.shape) != tuple(shape):
            raise ValueError(f"scores for {n!r} have shape {tuple(s.shape)}; expected {tuple(shape)} (the weight's)")
        out[n] = s.detach()
    return out


# ---------------------------------------------------------------------------------------
# keeping masked models copyable


class _DetachMasked:
    """Forward hook: replace each masked ``module.<name>`` (``orig * mask``) by a detached copy.

    The forward pass has already used the attached one (the autograd graph keeps it);
    the attribute left on the module is only read by ``deepcopy``, which refuses non-leaf
    tensors. A class, not a closure, so that the model pickles.
    """

    def __call__(self, module: nn.Module, inputs, output) -> None:
        _detach(module)


def _detach(module: nn.Module) -> None:
    for name in _masked(module):
        value = getattr(module, name, None)
        if isinstance(value, Tensor) and not isinstance(value, nn.Parameter) and value.grad_fn is not None:
            setattr(module, name, value.detach())


def _after_masking(module: nn.Module) -> None:
    _detach(module)
    if not any(isinstance(h, _DetachMasked) for h in module._forward_hooks.values()):
        module.register_forward_hook(_DetachMasked())


# ---------------------------------------------------------------------------------------
# pruning


def prune_global(
    model: nn.Module,
    amount: float,
    *,
    scores: Mapping[str, Tensor] | None = None,
    names: Sequence[str] | None = None,
    skip_first: bool = False,
    skip_last: bool = False,
) -> dict[str, Tensor]:
    """Mask the ``amount`` lowest-scored remaining weights over all eligible layers at once.

    One ranking over every eligible weight (``torch.nn.utils.prune.global_unstructured``
    with ``L1Unstructured``): the layers' sparsities follow from where their scores fall.

    Args:
        model: any module; modified in place.
        amount: fraction in [0, 1] of the weights not yet masked (over all eligible layers)
            to mask now; ``round(amount * remaining)`` weights are masked.
        scores: importance per weight, ``{name: tensor shaped like the weight}``; their
            absolute values are ranked. A weight missing from the dict is scored by its
            magnitude ``|w|`` (the default for all). Only the entries not yet masked compete.
        names: the weights to prune (default :func:`prunable_weights` with ``skip_first``
            and ``skip_last``).

    Returns:
        The masks of the pruned weights after this round, ``{name: 0/1 tensor}``.
    """
    amount = _check_amount(amount)
    names = _targets(model, names, skip_first, skip_last)
    given = _scores(model, names, scores)
    params = [_module(model, n) for n in names]
    importance = {(m, p): given[n] for n, (m, p) in zip(names, params) if n in given}
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, importance_scores=importance,
                              amount=amount)
    for m, _ in params:
        _after_masking(m)
    return {n: getattr(m, p + "_mask").detach().clone() for n, (m, p) in zip(names, params)}


def prune_layerwise(
    model: nn.Module,
    amount: float | Mapping[str, float],
    *,
    scores: Mapping[str, Tensor] | None = None,
    names: Sequence[str] | None = None,
    skip_first: bool = False,
    skip_last: bool = False,
) -> dict[str, Tensor]:
    """Mask the lowest-scored ``amount`` of every eligible layer's remaining weights.

    Each layer is ranked on its own (``torch.nn.utils.prune.l1_unstructured``): with one
    ``amount`` every layer ends at the same sparsity ("uniform" pruning).

    Args:
        amount: fraction in [0, 1] of each layer's unmasked weights to mask now, or
            ``{name: fraction}`` for per-layer amounts (then the dict's keys are the
            weights pruned, unless ``names`` is given too).
        scores, names, skip_first, skip_last: as :func:`prune_global`.

    Returns:
        The masks of the pruned weights after this round, ``{name: 0/1 tensor}``.
    """
    if isinstance(amount, Mapping):
        names = _targets(model, list(amount) if names is None else names, skip_first, skip_last)
        missing = sorted(set(names) - set(amount))
        if missing:
            raise ValueError(f"amount has no entry for {missing}; expected one fraction per pruned weight")
        amounts = {n: _check_amount(amount[n], f"amount[{n!r}]") for n in names}
    else:
        names = _targets(model, names, skip_first, skip_last)
        amounts = dict.fromkeys(names, _check_amount(amount))
    given = _scores(model, names, scores)
    out = {}
    for n in names:
        m, p = _module(model, n)
        prune.l1_unstructured(m, p, amount=amounts[n], importance_scores=given.get(n))
        _after_masking(m)
        out[n] = getattr(m, p + "_mask").detach().clone()
    return out


# ---------------------------------------------------------------------------------------
# reading, setting and removing masks


def masks_of(model: nn.Module) -> dict[str, Tensor]:
    """Every pruning mask of ``model``: ``{name: 0/1 tensor shaped like the weight}`` (copies)."""
    out = {}
    for mname, m in model.named_modules():
        for p in _masked(m):
            out[f"{mname}.{p}" if mname else p] = getattr(m, p + "_mask").detach().clone()
    return out


def apply_masks(model: nn.Module, mask_dict: Mapping[str, Tensor]) -> nn.Module:
    """Set the masks of ``model`` to ``mask_dict`` (``{name: tensor of 0/1 or bools}``); returns it.

    A weight without a mask gets one; a weight that has one gets it replaced (not combined:
    the model's mask becomes exactly the given one). The masked weights' stored values
    (``weight_orig``) are kept, so a mask that re-enables an entry brings back its old
    value. Typical use: the mask of a trained, pruned net on a freshly built one (a lottery
    ticket), or a mask computed elsewhere.
    """
    for name, mask in mask_dict.items():
        module, p = _module(model, name)
        current = getattr(module, p)
        if tuple(mask.shape) != tuple(current.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}; expected {tuple(current.shape)}")
        values = torch.unique(mask.detach().float())
        if not set(values.tolist()) <= {0.0, 1.0}:
            raise ValueError(f"mask for {name!r} has values {values.tolist()[:5]}; expected only 0 and 1")
        mask = mask.detach().to(device=current.device, dtype=current.dtype)
        if p in _masked(module):
            getattr(module, p + "_mask").copy_(mask)
            with torch.no_grad():
                setattr(module, p, getattr(module, p + "_orig") * getattr(module, p + "_mask"))
        else:
            prune.custom_from_mask(module, p, mask)
        _after_masking(module)
    return model


def remove_masks(model: nn.Module) -> nn.Module:
    """Bake every mask into its weight and drop the reparametrisation; returns ``model``.

    Afterwards ``weight`` is a plain parameter again, holding ``orig * mask`` (the masked
    entries are zeros that training may change), and the state dict has the unpruned
    model's keys again.
    """
    for m in model.modules():
        for p in _masked(m):
            prune.remove(m, p)
        for key, hook in list(m._forward_hooks.items()):
            if isinstance(hook, _DetachMasked):
                del m._forward_hooks[key]
    return model


def layer_sparsity(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, float]:
    """Fraction of each weight's entries that are masked, in [0, 1].

    ``names`` defaults to every Conv2d/Linear weight plus any other masked parameter; a
    weight without a mask has sparsity 0.0. (Counted on the masks: an unmasked weight that
    happens to be zero does not count; :func:`snnkit.metrics.sparsity` counts zeros.)
    """
    current = masks_of(model)
    if names is None:
        default = prunable_weights(model)
        names = default + [n for n in current if n not in set(default)]
    out = {}
    for n in names:
        _module(model, n)  # raises if absent
        mask = current.get(n)
        out[n] = 0.0 if mask is None else 1.0 - float(mask.sum()) / mask.numel()
    return out


def layer_density(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, float]:
    """Fraction of each weight's entries that are kept: ``1 - layer_sparsity``."""
    return {n: 1.0 - s for n, s in layer_sparsity(model, names).items()}


def global_sparsity(model: nn.Module, names: Sequence[str] | None = None) -> float:
    """Fraction of the entries of the weights ``names`` (as :func:`layer_sparsity`) that are masked."""
    sparsity = layer_sparsity(model, names)
    sizes = {n: getattr(*_module(model, n)).numel() for n in sparsity}
    total = sum(sizes.values())
    return sum(sparsity[n] * sizes[n] for n in sparsity) / total if total else 0.0


def rewind(model: nn.Module, state: Mapping[str, Tensor]) -> nn.Module:
    """Load earlier weights ``state`` into ``model`` and keep its current masks; returns it.

    ``state`` is a state dict of the same architecture, taken before pruning
    (``"x.weight"`` keys) or after (``"x.weight_orig"``/``"x.weight_mask"``): every tensor
    is restored (weights, biases, batch-norm statistics, LIF leaks and thresholds) except
    the masks, which stay the model's. Lottery-ticket style rewinding: save
    ``copy.deepcopy(model.state_dict())`` at an early epoch, prune later, rewind, retrain.
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
        for m in model.modules():
            for p in _masked(m):
                setattr(m, p, getattr(m, p + "_orig") * getattr(m, p + "_mask"))
    return model
