"""Planners: from importance scores to what is kept.

An importance (:mod:`snnkit.compress.importance`) says how much every channel or weight
matters; a planner says how many to keep and where, and nothing else. Any importance works
with any planner::

    scores = score(snn, "svs", Inputs(x, T=4))
    plan(scores, "layer", keep=0.5)                 # half of every layer's channels
    plan(scores, "layer", keep=[1.0, 0.5, 0.25])    # one fraction per layer
    plan(scores, "global", keep=0.5)                # half of all channels, by one ranking
    plan(scores, "global", channels=100)            # 100 channels in all
    plan(scores, "variance", threshold=0.99,        # PCA widths, the best-scored channels
         curves=score(snn, "pca-variance", Inputs(x, T=4)).curves)
    select(snn, "svs", "layer", Inputs(x, T=4), keep=0.5)   # score and plan in one call

Channel planners return a :class:`Selection` (the kept channels of every prunable layer),
which :func:`~snnkit.compress.surgery.shrink` cuts out for real. For single weights the
``"layer"`` and ``"global"`` planners take a ``sparsity`` instead and mask the model
(:func:`prune`, by :func:`~snnkit.compress.masks.prune_layerwise` and
:func:`~snnkit.compress.masks.prune_global`); the ``"variance"`` planner keeps channels only.

Registered (:data:`PLANNERS`):

* ``"layer"``: every layer on its own. Channels: ``keep`` (one fraction, or one per layer),
  ``max(1, round(keep * C))`` best-scored channels per layer. Weights: ``sparsity`` of each
  layer's remaining weights.
* ``"global"``: one ranking over all layers. Channels: ``keep`` (a fraction of all channels)
  or ``channels`` (a count); every layer keeps its best channel, the rest go to the best
  scores wherever they are (so scores must be comparable across layers: random draws are,
  magnitudes of different layers may not be). Weights: ``sparsity`` of all remaining weights.
* ``"variance"``: PCA widths (Chowdhury et al. 2021): each layer keeps as many channels as
  principal components explain ``threshold`` of its membrane potential's variance
  (:func:`~snnkit.compress.pca.components_needed`), its best-scored ones. The curves come from
  ``"pca-variance"`` scores, or ``curves=`` when another importance chooses the channels.
* ``"uniform+"``: weights only, ``sparsity`` of all remaining weights spread as Uniform+ (the
  first layer dense, the output layer capped); registered by :mod:`snnkit.compress.iterative`.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import torch
from torch import Tensor, nn

from ..registry import Registry
from ..train import TrainConfig
from .importance import IMPORTANCES, Importance, Inputs, Scores, make_importance
from .masks import prune_global, prune_layerwise
from .pca import _check_threshold, components_needed

__all__ = [
    "PLANNERS",
    "Planner",
    "Selection",
    "make_planner",
    "plan",
    "prune",
    "select",
    "train_inputs",
    "variance_widths",
    "widths_from_scores",
]


@dataclass
class Selection:
    """The channels kept in every prunable layer, and what chose them.

    Attributes:
        layers: names of the prunable layers (activations), in ``spec.widths`` order.
        widths: channels kept per layer, same order (each >= 1).
        original: the layers' current channels, same order.
        scores: per-channel importance (higher = keep), one (C,) tensor per layer.
        curves: cumulative PCA variance per layer when the scores carried them, else None.
        importance: the importance that scored, ``planner`` the planner that chose.
        options: the planner's options (keep, threshold, ...).
    """

    layers: list[str]
    widths: list[int]
    original: list[int]
    scores: list[Tensor] = field(repr=False)
    curves: list[Tensor] | None = field(default=None, repr=False)
    importance: str = ""
    planner: str = ""
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.layers)
        if len(self.widths) != n or len(self.original) != n or len(self.scores) != n:
            raise ValueError(f"selection of {n} layers has {len(self.widths)} widths, {len(self.original)} original "
                             f"widths and {len(self.scores)} score tensors; expected {n} of each")
        for name, w, c, s in zip(self.layers, self.widths, self.original, self.scores):
            if not 1 <= w <= c:
                raise ValueError(f"layer {name!r}: width {w} is not in [1, {c}] (its channels)")
            if s.numel() != c:
                raise ValueError(f"layer {name!r}: {s.numel()} scores for {c} channels")

    @property
    def ratio(self) -> float:
        """Fraction of channels kept over all prunable layers, in (0, 1]."""
        return sum(self.widths) / sum(self.original)

    def layer_ratios(self) -> dict[str, float]:
        """Per-layer fraction of channels kept, ``width / original``."""
        return {n: w / c for n, w, c in zip(self.layers, self.widths, self.original)}

    def kept(self) -> list[Tensor]:
        """Indices of the channels kept in each layer: the ``width`` best-scored, ascending
        (ties go to the lower index)."""
        return [s.argsort(descending=True, stable=True)[:w].sort().values for s, w in zip(self.scores, self.widths)]


def widths_from_scores(scores: Sequence[Tensor], keep: float | Sequence[float]) -> list[int]:
    """Widths keeping a fraction of every layer's channels: ``max(1, round(keep * C))``.

    ``keep`` is one fraction in (0, 1] for all layers or one per layer.
    """
    keeps = [keep] * len(scores) if isinstance(keep, numbers.Real) else list(keep)
    if len(keeps) != len(scores):
        raise ValueError(f"keep={keep!r}: expected one fraction or {len(scores)} (one per layer)")
    for k in keeps:
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not 0.0 < float(k) <= 1.0:
            raise ValueError(f"keep fraction {k!r}: expected a number in (0, 1]")
    return [max(1, int(round(float(k) * s.numel()))) for k, s in zip(keeps, scores)]


def variance_widths(curves: Sequence[Tensor], threshold: float) -> list[int]:
    """PCA widths at ``threshold``: per layer the fewest components whose cumulative variance
    reaches it (:func:`~snnkit.compress.pca.components_needed`). The curves answer every
    threshold, so a slider needs no new recording."""
    return [components_needed(c, threshold) for c in curves]


class Planner:
    """Base class of the planners in :data:`PLANNERS` (frozen dataclasses; options are fields)."""

    name: ClassVar[str] = ""

    def choose(self, scores: Scores) -> Selection:
        """The kept channels for channel-level ``scores``."""
        raise ValueError(f"planner {self.name!r} does not choose channels")  # pragma: no cover

    #: How single weights are masked (``prune_layerwise`` or ``prune_global``); None: channels only.
    masker: ClassVar[Callable[..., dict[str, Tensor]] | None] = None

    def mask(self, model: nn.Module, scores: Scores, names: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Mask ``model`` (in place) by weight-level ``scores`` (the weights ``names``, default
        all scored ones) at the planner's ``sparsity``; returns the masks."""
        if self.masker is None:
            raise ValueError(f"planner {self.name!r} keeps whole channels; for single weights use 'layer' or "
                             "'global' with a sparsity")
        _only(self, "weight", self._given())
        chosen = list(scores.names) if names is None else list(names)
        values = scores.as_dict()
        return type(self).masker(model, _check_fraction("sparsity", self.sparsity), names=chosen,
                                 scores={n: values[n] for n in chosen})

    def _given(self) -> dict:
        """The planner's options, ``curves`` aside."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "curves"}

    def _selection(self, scores: Scores, widths: list[int]) -> Selection:
        return Selection(list(scores.names), widths, scores.widths, list(scores.values),
                         None if scores.curves is None else list(scores.curves), scores.importance, self.name,
                         {k: v for k, v in self._given().items() if v is not None})


#: name -> planner class; ``PLANNERS.get(name)(**options)`` is a :class:`Planner`.
PLANNERS: Registry[type[Planner]] = Registry("planner")


def _register(cls: type[Planner]) -> type[Planner]:
    PLANNERS.register(cls.name, cls)
    return cls


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}={value!r}: expected a fraction in [0, 1]")
    return float(value)


def _only(planner: Planner, level: str, given: dict) -> None:
    """Raise unless exactly the options that fit ``level`` are set."""
    want = {"channel": [k for k in given if k != "sparsity"], "weight": ["sparsity"]}[level]
    set_ = [k for k, v in given.items() if v is not None]
    if not set_ or any(k not in want for k in set_) or (level == "channel" and len(set_) > 1):
        raise ValueError(f"planner {planner.name!r} at {level} level takes {' or '.join(want)}; "
                         f"got {', '.join(f'{k}={given[k]!r}' for k in set_) or 'none'}")


@_register
@dataclass(frozen=True)
class LayerPlanner(Planner):
    """Every layer on its own: ``keep`` of its channels, or ``sparsity`` of its weights."""

    name: ClassVar[str] = "layer"
    keep: float | Sequence[float] | None = None
    sparsity: float | None = None

    masker = staticmethod(prune_layerwise)

    def choose(self, scores: Scores) -> Selection:
        _only(self, "channel", self._given())
        return self._selection(scores, widths_from_scores(scores.values, self.keep))


@_register
@dataclass(frozen=True)
class GlobalPlanner(Planner):
    """One ranking over all layers: ``keep`` (fraction) or ``channels`` (count) of all
    channels, at least one per layer; or ``sparsity`` of all remaining weights."""

    name: ClassVar[str] = "global"
    keep: float | None = None
    channels: int | None = None
    sparsity: float | None = None

    masker = staticmethod(prune_global)

    def choose(self, scores: Scores) -> Selection:
        _only(self, "channel", self._given())
        original = scores.widths
        n_all, n_layers = sum(original), len(original)
        if self.keep is not None:
            if isinstance(self.keep, bool) or not isinstance(self.keep, numbers.Real) or not 0 < self.keep <= 1:
                raise ValueError(f"keep={self.keep!r}: expected a fraction in (0, 1] of all channels")
            total = max(n_layers, int(round(float(self.keep) * n_all)))
        else:
            total = self.channels
            if isinstance(total, bool) or not isinstance(total, int) or not n_layers <= total <= n_all:
                raise ValueError(f"channels={total!r}: expected an integer in [{n_layers}, {n_all}] (one channel "
                                 "per layer at least)")
        # one guaranteed channel per layer (its best), then the best of the rest over all layers
        widths = [1] * n_layers
        rest = torch.cat([s.sort(descending=True).values[1:] for s in scores.values])
        owner = torch.cat([torch.full((c - 1,), i) for i, c in enumerate(original)])
        for i in owner[rest.argsort(descending=True, stable=True)[: total - n_layers]].tolist():
            widths[i] += 1
        return self._selection(scores, widths)


@_register
@dataclass(frozen=True)
class VariancePlanner(Planner):
    """PCA widths at ``threshold`` of the variance, the best-scored channels of each layer.

    ``curves``: the cumulative variance per layer (default: the scores', from
    ``"pca-variance"``).
    """

    name: ClassVar[str] = "variance"
    threshold: float = 0.99
    curves: tuple[Tensor, ...] | None = field(default=None, repr=False)

    def choose(self, scores: Scores) -> Selection:
        curves = self.curves if self.curves is not None else scores.curves
        if curves is None:
            raise ValueError(f"the 'variance' planner needs PCA curves: score with 'pca-variance', or pass "
                             f"curves=score(model, 'pca-variance', inputs).curves (scores by {scores.importance!r} "
                             "have none)")
        if len(curves) != len(scores.values):
            raise ValueError(f"{len(curves)} curves for {len(scores.values)} layers: expected one per layer")
        widths = variance_widths(curves, _check_threshold(self.threshold))
        sel = self._selection(scores, widths)
        sel.curves = list(curves)
        return sel


def make_planner(name: str, **options) -> Planner:
    """``PLANNERS.get(name)(**options)``, with an error naming the options it takes."""
    cls = PLANNERS.get(name)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"planner {name!r} takes no option {unknown}; its options are: {', '.join(known)}")
    if "curves" in options and options["curves"] is not None:
        options = {**options, "curves": tuple(options["curves"])}
    return cls(**options)


def plan(scores: Scores, planner: str | Planner = "layer", **options) -> Selection:
    """The channels ``planner`` keeps by channel-level ``scores``.

    Raises:
        ValueError: weight-level scores (score at ``level="channel"``), or options the
            planner does not take or cannot combine.
    """
    if scores.level != "channel":
        raise ValueError(f"scores by {scores.importance!r} are per weight; a Selection keeps channels: score "
                         "with level='channel' (weight scores add up per filter), or mask with prune()")
    p = planner if isinstance(planner, Planner) else make_planner(planner, **options)
    return p.choose(scores)


def _split_options(importance: str, planner: str, options: dict) -> tuple[dict, dict]:
    """Options by owner: the importance's fields, the planner's fields; anything else is an error."""
    imp_fields = {f.name for f in dataclasses.fields(IMPORTANCES.get(importance))}
    plan_fields = {f.name for f in dataclasses.fields(PLANNERS.get(planner))}
    unknown = sorted(set(options) - imp_fields - plan_fields)
    if unknown:
        raise ValueError(f"options {unknown} belong neither to importance {importance!r} "
                         f"({', '.join(sorted(imp_fields)) or 'no options'}) nor to planner {planner!r} "
                         f"({', '.join(sorted(plan_fields))})")
    return ({k: v for k, v in options.items() if k in imp_fields},
            {k: v for k, v in options.items() if k in plan_fields and k not in imp_fields})


def select(model: nn.Module, importance: str | Importance = "l1", planner: str | Planner = "layer",
           inputs: Inputs | None = None, **options) -> Selection:
    """Score the channels of ``model`` with ``importance`` and keep what ``planner`` says.

    ``options`` go to whichever of the two has a field of that name (``keep``, ``threshold``,
    ``channels`` to the planner; ``seed``, ``eps`` to the importance). Every importance
    scores channels here (one that scores weights adds them up per filter).
    """
    imp, pl = _instances(importance, planner, options)
    return plan(imp(model, inputs, level="channel"), pl)


def prune(model: nn.Module, importance: str | Importance = "magnitude", planner: str | Planner = "global",
          inputs: Inputs | None = None, *, names: Sequence[str] | None = None, **options) -> dict[str, Tensor]:
    """Mask single weights of ``model`` (in place): ``importance`` at weight level, ``planner``
    ``"layer"`` or ``"global"`` with ``sparsity`` (of the remaining weights). Returns the masks.

    ``names``: the weights to prune (default: every Conv/Linear weight).
    """
    imp, pl = _instances(importance, planner, options)
    return pl.mask(model, imp(model, inputs, level="weight"), names)


def train_inputs(data, cfg: TrainConfig, importance: str, samples: int) -> Inputs | None:
    """What a compression method lets ``importance`` record: the first ``samples`` training
    inputs of ``data`` at ``cfg.T``, ``cfg.encoding`` and ``cfg.seed``; None for an importance
    that needs no data."""
    if not IMPORTANCES.get(importance).needs_data:
        return None
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r}: expected an integer >= 1 (training inputs the importance records)")
    return Inputs(getattr(data, "train", data).x[:samples], T=cfg.T, encoding=cfg.encoding, seed=cfg.seed)


def _instances(importance: str | Importance, planner: str | Planner, options: dict) -> tuple[Importance, Planner]:
    if isinstance(importance, Importance) and isinstance(planner, Planner):
        if options:
            raise ValueError(f"options {sorted(options)} given with instances; set them on the instances")
        return importance, planner
    imp_name = importance.name if isinstance(importance, Importance) else importance
    pl_name = planner.name if isinstance(planner, Planner) else planner
    imp_opts, pl_opts = _split_options(imp_name, pl_name, options)
    imp = importance if isinstance(importance, Importance) else make_importance(importance, **imp_opts)
    pl = planner if isinstance(planner, Planner) else make_planner(planner, **pl_opts)
    return imp, pl


