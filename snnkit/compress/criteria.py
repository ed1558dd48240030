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
* ``"sca"``, ``"svs"`` and ``"l1"`` (Wei et al. 2025, QP-SNN): the mean L1 membrane
  potential of a channel, the mean rank of its time-averaged spike maps, and the L1 norm
  of its filter. Each keeps the ``keep`` best-scored fraction of every layer (one
  fraction, or one per layer); :func:`score_stability` says how much a criterion's scores
  agree across input batches.
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
    "feeding_layers",
    "l1_criterion",
    "l1_filter_scores",
    "pairwise_cosine",
    "pca_criterion",
    "random_criterion",
    "sca_criterion",
    "sca_scores",
    "score_stability",
    "spike_map_rank",
    "svs_criterion",
    "svs_scores",
    "widths_at",
    "widths_from_scores",
    "with_keep",
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


# ---------------------------------------------------------------------------------------
# QP-SNN (Wei et al. 2025): SCA, SVS and filter L1 scores, and how stable scores are
#
# All three score every channel of every prunable layer (higher = keep) and keep the
# ``keep`` best-scored fraction of each layer: one fraction for all layers or one per
# layer, as :func:`widths_from_scores` reads it. Pure maths first, criteria second.


def spike_map_rank(maps: Tensor, eps: float = 1e-6) -> Tensor:
    """Rank of every sample's time-averaged spike map, per channel.

    Args:
        maps: time-averaged spikes ``sum_t S[t] / T`` (spikes per step, in [0, 1]) of shape
            ``(N, C, H, W)`` (a conv layer: each ``(H, W)`` map is a matrix) or ``(N, C)``
            (a linear layer: each value is a 1 x 1 map, of rank 1 when non-zero).
        eps: singular values above ``eps`` count (computed in float64, where round-off
            is about 1e-14 on maps of this size).

    Returns:
        ``(N, C)`` float32 ranks, integers in [0, min(H, W)].
    """
    if maps.dim() not in (2, 4):
        raise ValueError(f"spike maps of shape {tuple(maps.shape)}: expected (N, C, H, W) or (N, C)")
    if not eps >= 0:
        raise ValueError(f"eps={eps!r}: expected a number >= 0")
    m = maps.detach().double()
    if m.dim() == 2:
        return (m.abs() > eps).float()
    return (torch.linalg.svdvals(m) > eps).sum(-1).float()  # (N, C, min(H, W)) -> (N, C)


def svs_scores(maps: Tensor, eps: float = 1e-6) -> Tensor:
    """SVS score of every channel: its spike maps' rank (:func:`spike_map_rank`) averaged
    over the N samples. ``maps`` (N, C, H, W) or (N, C) -> (C,) float32, in [0, min(H, W)]."""
    return spike_map_rank(maps, eps).mean(0)


def sca_scores(abs_membrane: Tensor) -> Tensor:
    """SCA score of every channel: its mean L1 membrane potential.

    Args:
        abs_membrane: ``sum_t |U[t]| / T`` per sample, channel and position, (N, C, ...)
            in membrane units (the threshold is one spike's worth).

    Returns:
        (C,) float32: the mean over samples and positions.
    """
    if abs_membrane.dim() < 2:
        raise ValueError(f"membrane of shape {tuple(abs_membrane.shape)}: expected (N, C, ...)")
    return abs_membrane.detach().float().transpose(0, 1).reshape(abs_membrane.shape[1], -1).mean(1)


def l1_filter_scores(weight: Tensor) -> Tensor:
    """L1 norm of every output filter: ``sum |W[c]|`` over all but the first dimension.

    ``weight`` (C_out, C_in, kH, kW) or (C_out, C_in) -> (C_out,) float32.
    """
    if weight.dim() < 2:
        raise ValueError(f"weight of shape {tuple(weight.shape)}: expected (C_out, ...) with 2 or more dims")
    return weight.detach().float().abs().flatten(1).sum(1)


def pairwise_cosine(vectors: Tensor) -> float:
    """Mean cosine similarity over all pairs of rows of ``vectors`` (K, C), K >= 2.

    1.0 for identical rows. A zero row has similarity 0 with every other row (it says
    nothing about which channel matters), except with another zero row (1.0: the same).
    """
    if vectors.dim() != 2 or vectors.shape[0] < 2:
        raise ValueError(f"score vectors of shape {tuple(vectors.shape)}: expected (K, C) with K >= 2 batches")
    v = vectors.detach().double()
    norms = v.norm(dim=1)
    unit = v / torch.where(norms > 0, norms, torch.ones_like(norms)).unsqueeze(1)
    sim = unit @ unit.T
    zero = norms == 0
    sim[zero.unsqueeze(0) & zero.unsqueeze(1)] = 1.0
    i, j = torch.triu_indices(len(v), len(v), offset=1)
    return float(sim[i, j].mean())


def _scored(layers: list[str], scores: list[Tensor], keep: float | Sequence[float],
            criterion: str, options: dict) -> Selection:
    return Selection(layers=layers, widths=widths_from_scores(scores, keep),
                     original=[int(s.numel()) for s in scores], scores=scores, criterion=criterion,
                     options={"keep": keep, **options})


@CRITERIA.register("sca")
def sca_criterion(
    model: nn.Module,
    x: object,
    *,
    T: int,
    encoding: str = "direct",
    keep: float | Sequence[float] = 0.5,
    batch_size: int = 256,
    seed: int = 0,
) -> Selection:
    """Spiking channel activity (the baseline of Wei et al. 2025): a channel's mean L1
    membrane potential ``mean |U[t]|`` over samples, positions and the T steps
    (:func:`sca_scores`). Keeps the ``keep`` best-scored fraction of each layer."""
    layers = prunable_layers(model)
    mem = layer_activity(model, x, T=T, encoding=encoding, kind="membrane-magnitude", batch_size=batch_size,
                         seed=seed)
    return _scored(layers, [sca_scores(mem[n]) for n in layers], keep, "sca",
                   {"T": T, "encoding": encoding, "seed": seed})


@CRITERIA.register("svs")
def svs_criterion(
    model: nn.Module,
    x: object,
    *,
    T: int,
    encoding: str = "direct",
    keep: float | Sequence[float] = 0.5,
    eps: float = 1e-6,
    batch_size: int = 256,
    seed: int = 0,
) -> Selection:
    """Singular value of spike maps (Wei et al. 2025): a channel's score is the rank of each
    sample's time-averaged spike map, averaged over all samples of all batches
    (:func:`svs_scores`). Keeps the ``keep`` best-scored fraction of each layer.

    A linear hidden layer has 1 x 1 maps: its score is the fraction of samples on which
    the channel fires at all.
    """
    layers = prunable_layers(model)
    spikes = layer_activity(model, x, T=T, encoding=encoding, kind="spikes", batch_size=batch_size, seed=seed)
    return _scored(layers, [svs_scores(spikes[n], eps) for n in layers], keep, "svs",
                   {"T": T, "encoding": encoding, "eps": eps, "seed": seed})


def feeding_layers(model: nn.Module) -> dict[str, str]:
    """``{prunable LIF layer: the Conv/Linear module whose output channels it receives}``.

    VGG: the conv or hidden linear layer before the LIF; ResNet: the block's ``conv1``.
    """
    wanted = set(prunable_layers(model))
    out, last = {}, None
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            last = name
        elif name in wanted:
            out[name] = last
    return out


@CRITERIA.register("l1")
def l1_criterion(
    model: nn.Module,
    x: object = None,
    *,
    T: int = 1,
    encoding: str = "direct",
    keep: float | Sequence[float] = 0.5,
) -> Selection:
    """Magnitude baseline: the L1 norm of the filter producing each channel
    (:func:`l1_filter_scores` of the weight the forward pass uses, quantized if a quantizer
    is attached). ``x``, ``T`` and ``encoding`` are accepted for the common signature and
    not used."""
    layers = prunable_layers(model)
    modules = dict(model.named_modules())
    feeding = feeding_layers(model)
    return _scored(layers, [l1_filter_scores(modules[feeding[n]].weight) for n in layers], keep, "l1", {})


def with_keep(selection: Selection, keep: float | Sequence[float]) -> Selection:
    """The same scores, keeping another fraction of each layer (one or one per layer).

    Suits a slider, and puts a ``"random"`` selection on the same per-layer widths as
    another criterion's: ``with_keep(random_criterion(model, keep=0.5), [0.5, 0.25])``.
    """
    if selection.scores is None:
        raise ValueError(f"selection by {selection.criterion or '?'!r} has no scores; expected a "
                         "criterion that scores channels (e.g. svs, sca, l1, random)")
    return Selection(layers=list(selection.layers), widths=widths_from_scores(selection.scores, keep),
                     original=list(selection.original), scores=selection.scores, curves=selection.curves,
                     criterion=selection.criterion, options={**selection.options, "keep": keep})


def score_stability(
    model: nn.Module,
    inputs: Sequence[Tensor],
    criterion: str = "svs",
    *,
    T: int,
    encoding: str = "direct",
    **options,
) -> dict[str, float]:
    """How much a criterion's channel scores agree from one input batch to the next.

    The criterion scores every batch on its own; per layer the result is the mean pairwise
    cosine similarity of those score vectors (:func:`pairwise_cosine`), in [0, 1] for
    non-negative scores (1: every batch ranks and weighs the channels alike).

    Args:
        model: the trained spiking network.
        inputs: two or more input batches, each (B, C, H, W) (or a list of ``(x, y)``).
        criterion: a :data:`CRITERIA` name whose selections have scores.
        T, encoding, options: passed to the criterion.

    Returns:
        ``{prunable layer: mean pairwise cosine similarity}``.
    """
    parts = [b[0] if isinstance(b, (tuple, list)) else b for b in inputs]
    if len(parts) < 2:
        raise ValueError(f"{len(parts)} batch(es): expected at least 2 to compare scores across batches")
    fn = CRITERIA.get(criterion)
    sels = [fn(model, b, T=T, encoding=encoding, **options) for b in parts]
    if sels[0].scores is None:
        raise ValueError(f"criterion {criterion!r} gives widths, not scores; expected one of "
                         "svs, sca, l1, random")
    return {name: pairwise_cosine(torch.stack([s.scores[i] for s in sels]))
            for i, name in enumerate(sels[0].layers)}
