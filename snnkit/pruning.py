"""Structured pruning criteria behind one small interface, and the PCA criterion on a model.

A *criterion* looks at a trained network and a batch of inputs and says how many channels
each prunable layer should keep (its *widths*) and, where it can, how important each
channel is (its *scores*, higher = keep). The result of structured pruning is a genuinely
smaller network: ``spec.with_widths(widths)`` rebuilds the architecture with fewer
channels, which is then trained again::

    new_spec, result = pca_prune(snn, data.train.x[:256], threshold=0.99, T=25)
    small = build(new_spec)                      # fewer channels, fewer parameters

Criteria are registered by name in :data:`CRITERIA` and share one signature::

    criterion(model, x, *, T, encoding="direct", **options) -> Selection

* ``"pca"`` (Chowdhury, Garg and Roy 2021): the number of principal components of a
  layer's averaged membrane potential that explain ``threshold`` of its variance.
  Widths only: PCA says how many channels are needed, not which ones.
* ``"random"``: a baseline. Every channel gets a seeded random score and the ``total``
  best-scored channels over all layers are kept (at least one per layer), so a random
  selection can be compared with another criterion at the same total width.

Later criteria that score channels (SVS, SCA, attention, ...) return ``scores`` too;
:func:`widths_from_scores` turns per-channel scores into widths at a keep fraction.

Prunable layers: for a :class:`~snnkit.models.VGGSpec` every conv and hidden linear layer
(one LIF layer each, in ``spec.widths`` order; the output layer is never pruned); for a
:class:`~snnkit.models.ResNetSpec` the inner (first) conv of every block, whose LIF layer
is the block's ``act1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

import torch
from torch import Tensor, nn

from .models import ResNetSpec, VGGSpec, lif_layers, probe
from .pca import PCAResult, pca_widths

__all__ = [
    "Selection",
    "Criterion",
    "CRITERIA",
    "register_criterion",
    "get_criterion",
    "membrane_features",
    "prunable_layers",
    "pca_criterion",
    "random_criterion",
    "widths_from_scores",
    "prune_spec",
    "pca_prune",
    "widths_at",
]


@dataclass
class Selection:
    """What a criterion chose.

    Attributes:
        layers: names of the prunable LIF layers, in ``spec.widths`` order.
        widths: channels to keep per prunable layer, same order (each >= 1).
        original: current channels per prunable layer, same order.
        scores: per-channel importance (higher = keep), one (C,) tensor per layer, or
            None for criteria that give widths only (PCA).
        detail: criterion-specific extras (e.g. the :class:`~snnkit.pca.PCAResult`).
    """

    layers: list[str]
    widths: list[int]
    original: list[int]
    scores: list[Tensor] | None = None
    detail: object = field(default=None, repr=False)

    @property
    def ratio(self) -> float:
        """Fraction of channels kept over all prunable layers, in (0, 1]."""
        return sum(self.widths) / sum(self.original)


class Criterion(Protocol):
    """A structured pruning criterion: ``(model, x, *, T, encoding, **options) -> Selection``.

    ``x`` is an input batch, a :class:`~snnkit.data.Split` or an iterable of batches (see
    :func:`membrane_features`); ``T`` the number of time steps to simulate.
    """

    def __call__(self, model: nn.Module, x: object, *, T: int, encoding: str = "direct", **options) -> Selection: ...


#: name -> criterion. Extend with :func:`register_criterion`.
CRITERIA: dict[str, Criterion] = {}


def register_criterion(name: str) -> Callable[[Criterion], Criterion]:
    """Decorator adding a criterion to :data:`CRITERIA` under ``name`` (names are unique)."""

    def deco(fn: Criterion) -> Criterion:
        if name in CRITERIA:
            raise ValueError(f"criterion {name!r} is already registered; pick another name")
        CRITERIA[name] = fn
        return fn

    return deco


def get_criterion(name: str) -> Criterion:
    """The criterion called ``name`` in :data:`CRITERIA`."""
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; expected one of {sorted(CRITERIA)}")
    return CRITERIA[name]


# ---------------------------------------------------------------------------------------
# recording membrane potentials


def _batches(x: object, batch_size: int) -> Iterable[Tensor]:
    """Input batches from a tensor (chunked), a Split (its ``x``) or an iterable of batches."""
    if hasattr(x, "x") and hasattr(x, "y"):  # a snnkit.data.Split
        x = x.x
    if isinstance(x, Tensor):
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"input of shape {tuple(x.shape)}: expected a non-empty batch (N, ...)")
        return x.split(batch_size)
    if isinstance(x, Iterable):
        return (b[0] if isinstance(b, (tuple, list)) else b for b in x)
    raise TypeError(f"x={type(x).__name__}: expected a tensor (N, ...), a Split or an iterable of batches")


def membrane_features(
    model: nn.Module,
    batches_or_x: object,
    T: int,
    encoding: str = "direct",
    *,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Every LIF layer's membrane potential accumulated over T steps and averaged, per sample.

    For each LIF layer the value is ``sum_t U[t] / T`` (U[t] as the layer records it, before
    that step's reset), so the result for a layer of shape (T, B, C, H, W) is (N, C, H, W)
    and for a linear layer (T, B, C) it is (N, C), in membrane units (the layer's threshold
    is one spike's worth). The model runs in eval mode under ``torch.no_grad``; its training
    flag is restored afterwards.

    Args:
        model: a spiking network (:func:`snnkit.models.build` with ``spiking=True``).
        batches_or_x: static inputs (N, C, H, W) in [0, 1] (cut into ``batch_size`` chunks),
            event inputs (N, T0, 2, H, W), a :class:`~snnkit.data.Split`, or an iterable of
            batches (tensors or ``(x, y)`` pairs).
        T: time steps to simulate, >= 1.
        encoding: how a static batch becomes spikes (see :data:`snnkit.encoding.ENCODERS`).
        batch_size: chunk size for a tensor input.
        seed: seeds random encodings (``"rate"``), so the features are reproducible.

    Returns:
        ``{LIF layer name: tensor}`` in forward order, float32 on the CPU.
    """
    from .train import TrainConfig, prepare_input

    if not getattr(model, "spiking", True) or not lif_layers(model):
        raise ValueError("membrane_features needs a spiking model with LIF layers; got one without")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    cfg = TrainConfig(timesteps=T, encoding=encoding, progress=False, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    parts: dict[str, list[Tensor]] = {}

    def record(name: str, spikes: Tensor, mem: Tensor) -> None:
        parts.setdefault(name, []).append(mem.float().mean(0).cpu())  # (T, B, ...) -> (B, ...)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), probe(model, record):
            for xb in _batches(batches_or_x, batch_size):
                model(prepare_input(model, xb.to(device), cfg, gen))
    finally:
        model.train(was_training)
    if not parts:
        raise ValueError("no input batches were given; expected at least one sample")
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def prunable_layers(model: nn.Module) -> list[str]:
    """Names of the LIF layers whose widths are ``model.spec.widths``, in that order.

    VGG: the LIF after every conv and hidden linear layer (not an output LIF of readout
    "spike"). ResNet: the ``act1`` of every block.
    """
    spec = getattr(model, "spec", None)
    names = [n for n, _ in lif_layers(model)]
    if isinstance(spec, VGGSpec):
        chosen = names[: len(spec.widths)]
    elif isinstance(spec, ResNetSpec):
        chosen = [n for n in names if n.endswith(".act1")]
    else:
        raise ValueError(f"model.spec={spec!r}: expected a model built from a VGGSpec or ResNetSpec")
    if len(chosen) != len(spec.widths):
        raise ValueError(f"found {len(chosen)} prunable LIF layers for {len(spec.widths)} widths in {spec}")
    return chosen


# ---------------------------------------------------------------------------------------
# criteria


@register_criterion("pca")
def pca_criterion(
    model: nn.Module,
    x: object,
    *,
    T: int,
    encoding: str = "direct",
    threshold: float = 0.99,
    seed: int = 0,
    batch_size: int = 256,
) -> Selection:
    """PCA widths (Chowdhury, Garg and Roy 2021) of every prunable layer.

    Each layer keeps the number of principal components of its averaged membrane potential
    (channels as features, sample x position as observations) needed to explain
    ``threshold`` of the variance, see :func:`snnkit.pca.pca_widths`. ``detail`` holds the
    :class:`~snnkit.pca.PCAResult` restricted to the prunable layers.
    """
    layers = prunable_layers(model)
    feats = membrane_features(model, x, T, encoding, batch_size=batch_size, seed=seed)
    result = pca_widths({n: feats[n] for n in layers}, threshold)
    return Selection(
        layers=layers,
        widths=[result.widths[n] for n in layers],
        original=[result.original[n] for n in layers],
        detail=result,
    )


def widths_from_scores(scores: Sequence[Tensor], keep: float | Sequence[float]) -> list[int]:
    """Widths keeping a fraction of every layer's channels: ``max(1, round(keep * C))``.

    ``keep`` is one fraction in (0, 1] for all layers or one per layer.
    """
    keeps = [keep] * len(scores) if isinstance(keep, (int, float)) else list(keep)
    if len(keeps) != len(scores):
        raise ValueError(f"keep={keep!r}: expected one fraction or {len(scores)} (one per layer)")
    for k in keeps:
        if not 0.0 < float(k) <= 1.0:
            raise ValueError(f"keep fraction {k!r}: expected a number in (0, 1]")
    return [max(1, int(round(float(k) * s.numel()))) for k, s in zip(keeps, scores)]


@register_criterion("random")
def random_criterion(
    model: nn.Module,
    x: object = None,
    *,
    T: int = 1,
    encoding: str = "direct",
    total: int | None = None,
    keep: float | None = None,
    seed: int = 0,
) -> Selection:
    """Random baseline: seeded uniform scores, the ``total`` best channels over all layers kept.

    Give either ``total`` (channels kept over all prunable layers, e.g. the sum of another
    criterion's widths) or ``keep`` (a fraction of all channels). Every layer keeps at least
    one channel. ``x``, ``T`` and ``encoding`` are accepted for the common signature and
    not used: the choice depends on the seed only.
    """
    layers = prunable_layers(model)
    original = list(model.spec.widths)
    n_all = sum(original)
    if (total is None) == (keep is None):
        raise ValueError(f"total={total!r}, keep={keep!r}: expected exactly one of them")
    if keep is not None:
        if not 0.0 < float(keep) <= 1.0:
            raise ValueError(f"keep={keep!r}: expected a fraction in (0, 1]")
        total = max(len(original), int(round(float(keep) * n_all)))
    if not (isinstance(total, int) and len(original) <= total <= n_all):
        raise ValueError(f"total={total!r}: expected an integer in [{len(original)}, {n_all}] (one channel per layer at least)")
    gen = torch.Generator().manual_seed(seed)
    scores = [torch.rand(c, generator=gen) for c in original]
    # one guaranteed channel per layer (its best), then the best of the rest globally
    widths = [1] * len(original)
    rest = torch.cat([s.sort(descending=True).values[1:] for s in scores])
    owner = torch.cat([torch.full((c - 1,), i) for i, c in enumerate(original)])
    for i in owner[rest.argsort(descending=True)[: total - len(original)]].tolist():
        widths[i] += 1
    return Selection(layers=layers, widths=widths, original=original, scores=scores)


# ---------------------------------------------------------------------------------------
# from a selection to a smaller architecture


def prune_spec(spec: VGGSpec | ResNetSpec, selection: Selection) -> VGGSpec | ResNetSpec:
    """The spec with the selection's widths (``spec.with_widths``); build it to get the model."""
    if len(selection.widths) != len(spec.widths):
        raise ValueError(f"selection has {len(selection.widths)} widths; the spec has {len(spec.widths)}")
    return spec.with_widths(selection.widths)


def pca_prune(
    model: nn.Module,
    x: object,
    threshold: float,
    T: int,
    encoding: str = "direct",
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[VGGSpec | ResNetSpec, PCAResult]:
    """PCA widths of every prunable layer and the spec rebuilt with them.

    Args:
        model: a trained spiking network built from a spec.
        x: inputs to record (see :func:`membrane_features`); a few hundred samples suffice.
        threshold: fraction of variance to explain per layer, in (0, 1].
        T: time steps to simulate.
        encoding: input encoding for static inputs.

    Returns:
        ``(new_spec, result)``: ``model.spec.with_widths(widths)`` and the
        :class:`~snnkit.pca.PCAResult` of the prunable layers (widths, original widths,
        cumulative explained-variance curves).
    """
    sel = pca_criterion(model, x, T=T, encoding=encoding, threshold=threshold, seed=seed, batch_size=batch_size)
    return prune_spec(model.spec, sel), sel.detail


def widths_at(result: PCAResult, threshold: float) -> list[int]:
    """Widths the recorded PCA curves give at another ``threshold``, without recording again.

    Same rule as :func:`snnkit.pca.pca_width`: the smallest k with ``curve[k-1] >=
    threshold``, capped at C; 1 for a layer without variance. Suits a slider: the
    cumulative curves in ``result`` answer every threshold.
    """
    from .pca import _check_threshold

    t = _check_threshold(threshold)
    out = []
    for curve in result.curves.values():
        if curve.numel() == 0 or curve[-1] <= 0:
            out.append(1)
            continue
        k = int(torch.searchsorted(curve, torch.tensor([t], dtype=curve.dtype), side="left")) + 1
        out.append(min(k, curve.numel()))
    return out
