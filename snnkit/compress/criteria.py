"""Structured pruning criteria behind one small interface.

A *criterion* looks at a trained network and a batch of inputs and says how many channels
each prunable layer should keep (its *widths*) and, where it can, how important each
channel is (its *scores*, higher = keep). Every criterion has the same signature and
returns one :class:`Selection`::

    criterion(model, x, *, T, encoding="direct", **options) -> Selection

    sel = CRITERIA.get("pca")(snn, data.train.x[:256], T=25, threshold=0.99)
    small = build(snn.spec.with_widths(sel.widths))      # a genuinely smaller net, retrained
    kept = shrink(snn, sel)                              # or: the same net, channels cut out

Registered criteria (:data:`CRITERIA`):

* ``"pca"`` (Chowdhury, Garg and Roy 2021): the number of principal components of a
  layer's time-averaged membrane potential that explain ``threshold`` of its variance.
  Widths only: PCA says how many channels are needed, not which ones. The selection keeps
  the cumulative variance curves, so :func:`widths_at` answers any other threshold.
* ``"random"``: a baseline. Every channel gets a seeded random score and the ``total``
  best-scored channels over all layers are kept (at least one per layer), so a random
  selection can be compared with another criterion at the same total width.

Prunable layers: see :func:`snnkit.compress.activity.prunable_layers`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import torch
from torch import Tensor, nn

from ..registry import Registry
from .activity import layer_activity, prunable_layers
from .pca import _check_threshold, components_needed, explained_variance

__all__ = [
    "CRITERIA",
    "Criterion",
    "Selection",
    "pca_criterion",
    "random_criterion",
    "widths_at",
    "widths_from_scores",
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
        curves: PCA only: cumulative explained variance per layer, float64 (C,)
            (``curves[i][k-1]`` is the variance fraction kept with ``k`` channels).
        criterion: the registry name of the criterion that made it.
        options: the options it was called with (threshold, seed, ...).
    """

    layers: list[str]
    widths: list[int]
    original: list[int]
    scores: list[Tensor] | None = field(default=None, repr=False)
    curves: list[Tensor] | None = field(default=None, repr=False)
    criterion: str = ""
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.layers)
        if len(self.widths) != n or len(self.original) != n:
            raise ValueError(f"selection of {n} layers has {len(self.widths)} widths and "
                             f"{len(self.original)} original widths; expected {n} of each")
        for name, w, c in zip(self.layers, self.widths, self.original):
            if not 1 <= w <= c:
                raise ValueError(f"layer {name!r}: width {w} is not in [1, {c}] (its channels)")

    @property
    def ratio(self) -> float:
        """Fraction of channels kept over all prunable layers, in (0, 1]."""
        return sum(self.widths) / sum(self.original)

    def layer_ratios(self) -> dict[str, float]:
        """Per-layer fraction of channels kept, ``width / original``."""
        return {n: w / c for n, w, c in zip(self.layers, self.widths, self.original)}

    def keep(self) -> list[Tensor]:
        """Indices of the channels kept in each layer: the ``width`` best-scored, ascending.

        Raises:
            ValueError: the criterion gave widths only (no scores), so which channels to
                keep is not defined; rebuild with ``spec.with_widths(widths)`` instead.
        """
        if self.scores is None:
            raise ValueError(f"criterion {self.criterion or '?'!r} gives widths, not scores: it does not say "
                             "which channels to keep; use spec.with_widths(selection.widths) and retrain")
        return [s.argsort(descending=True, stable=True)[:w].sort().values for s, w in zip(self.scores, self.widths)]


class Criterion(Protocol):
    """A structured pruning criterion: ``(model, x, *, T, encoding, **options) -> Selection``.

    ``x`` is an input batch, a :class:`~snnkit.data.Split` or an iterable of batches (see
    :func:`snnkit.compress.activity.layer_activity`); ``T`` the number of time steps to
    simulate, ``encoding`` how a static input becomes spikes.
    """

    def __call__(self, model: nn.Module, x: object, *, T: int, encoding: str = "direct", **options) -> Selection: ...


#: name -> criterion with the signature of :class:`Criterion`.
CRITERIA: Registry[Criterion] = Registry("criterion")


@CRITERIA.register("pca")
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

    Each layer keeps the number of principal components of its time-averaged membrane
    potential (channels as features, sample x position as observations) needed to explain
    ``threshold`` of the variance (:func:`snnkit.compress.pca.pca_width`).
    """
    t = _check_threshold(threshold)
    layers = prunable_layers(model)
    feats = layer_activity(model, x, T=T, encoding=encoding, kind="membrane", batch_size=batch_size, seed=seed)
    curves = [torch.cumsum(explained_variance(feats[n]), dim=0) for n in layers]
    return Selection(
        layers=layers,
        widths=[components_needed(c, t) for c in curves],
        original=[int(c.numel()) for c in curves],
        curves=curves,
        criterion="pca",
        options={"threshold": t, "T": T, "encoding": encoding, "seed": seed},
    )


def widths_at(selection: Selection, threshold: float) -> list[int]:
    """Widths a PCA selection's curves give at another ``threshold``, without recording again.

    The same rule as the criterion (:func:`snnkit.compress.pca.components_needed`); suits a
    slider, since the cumulative curves answer every threshold.
    """
    if selection.curves is None:
        raise ValueError(f"selection by {selection.criterion or '?'!r} has no variance curves; "
                         "expected one made by the 'pca' criterion")
    return [components_needed(c, threshold) for c in selection.curves]


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


@CRITERIA.register("random")
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
    return Selection(layers=layers, widths=widths, original=original, scores=scores, criterion="random",
                     options={"total": total, "seed": seed})
