"""Importance: how much each channel, or each weight, of a trained network matters.

Structured pruning splits into three jobs, as in Torch-Pruning: an *importance* scores, a
*planner* (:mod:`snnkit.compress.planners`) decides what to keep, *surgery*
(:func:`snnkit.compress.surgery.shrink`, or masks for single weights) removes the rest.
Every importance has one signature::

    importance(model, inputs=None, *, level=None) -> Scores

    imp = IMPORTANCES.get("svs")(eps=1e-6)          # options go to the constructor
    scores = imp(snn, Inputs(x, T=4))                # one (C,) score per channel of each layer
    scores = score(snn, "svs", Inputs(x, T=4))       # the same in one call
    sel = plan(scores, "layer", keep=0.5)            # snnkit.compress.planners
    small = shrink(snn, sel)

Scores are per *channel* (``level="channel"``: one (C,) tensor per prunable layer, named by
the layer's activation, see :func:`~snnkit.compress.activity.prunable_layers`) or per
*weight* (``level="weight"``: one tensor shaped like each Conv/Linear weight, named like
``"body.layers.0.weight"``). Higher always means more important. An importance that scores
single weights also scores channels: a channel's score is the sum of the absolute scores
of the weights of the filter that produces it (for ``"magnitude"`` that is the filter's L1
norm, ``"l1"``). One that scores channels from their activity cannot score single weights
and says so. ``inputs`` (:class:`Inputs`: a batch, T, encoding) are what data-driven
importances record the network on; the others need none (``Importance.needs_data``).

Registered (:data:`IMPORTANCES`):

==================  ========  =====  ============================================================
name                levels    data   a channel's (or weight's) score
==================  ========  =====  ============================================================
``pca-variance``    channel   yes    variance of its time-averaged membrane potential; the
                                     scores carry the cumulative PCA variance curves that the
                                     ``"variance"`` planner reads (Chowdhury et al. 2021)
``svs``             channel   yes    mean rank of its time-averaged spike maps (Wei et al. 2025);
                                     not on sequences (1 x L maps, see :func:`spike_map_rank`)
``sca``             channel   yes    mean L1 membrane potential (the SCA baseline of Wei et al.)
``attention``       channel   yes    its share of the layer's attention map, the mean squared
                                     firing rate (Zagoruyko and Komodakis; Kundu et al. 2021)
``l1``              both      no     L1 norm of its filter (weight level: ``|w|``)
``magnitude``       both      no     ``|w|`` of the effective weight (channel level: ``l1``)
``lamp``            both      no     LAMP score of the weight (Lee et al. 2021, Gou et al. 2025)
``random``          both      no     seeded uniform draws: the baseline every other must beat
==================  ========  =====  ============================================================

Adding one: a frozen dataclass subclass of :class:`Importance` registered by name, with
``levels``, ``needs_data`` and ``channel_scores`` and/or ``weight_scores``; its options are
its fields; one that cannot score some networks says so in :meth:`Importance.check`. :func:`score_stability` says how much an importance's scores agree across
input batches.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch import Tensor, nn

from ..registry import Registry
from ..weights import LAYER_TYPES, effective_weight
from .activity import layer_activity, prunable_layers
from .lamp import lamp_scores
from .masks import prunable_weights
from .pca import explained_variance, feature_matrix

__all__ = [
    "IMPORTANCES",
    "LEVELS",
    "Importance",
    "Inputs",
    "SVS_ON_SEQUENCES",
    "Scores",
    "feeding_layers",
    "l1_filter_scores",
    "make_importance",
    "pairwise_cosine",
    "sca_scores",
    "score",
    "score_stability",
    "spike_map_rank",
    "svs_scores",
    "with_seed",
]

#: What an importance scores: whole output channels, or single weights.
LEVELS = ("channel", "weight")


@dataclass(frozen=True)
class Inputs:
    """What a data-driven importance runs the network on.

    Attributes:
        x: static inputs (N, C, H, W) in [0, 1], event inputs (N, T0, 2, H, W), a
            :class:`~snnkit.data.Split` or an iterable of batches (see
            :func:`~snnkit.compress.activity.layer_activity`).
        T: time steps to simulate, >= 1.
        encoding: how a static batch becomes spikes (:func:`snnkit.encoding.model_input`).
        batch_size: chunk size for a tensor input.
        seed: seeds random encodings, so that scores are reproducible.
    """

    x: object
    T: int = 1
    encoding: str = "direct"
    batch_size: int = 256
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Scores:
    """What an importance said about a model.

    Attributes:
        importance: the :data:`IMPORTANCES` name that scored.
        level: ``"channel"`` or ``"weight"``.
        names: prunable layers (channel level, in ``spec.widths`` order) or weight names.
        values: one tensor per name, higher = more important: (C,) per layer, or shaped like
            the weight.
        curves: ``"pca-variance"`` only: each layer's cumulative explained variance, float64
            (C,) (``curves[i][k-1]``: the fraction of variance ``k`` components explain).
    """

    importance: str
    level: str
    names: tuple[str, ...]
    values: tuple[Tensor, ...]
    curves: tuple[Tensor, ...] | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level={self.level!r}: expected one of {', '.join(LEVELS)}")
        if len(self.names) != len(self.values):
            raise ValueError(f"{len(self.names)} names and {len(self.values)} score tensors: expected one each")

    def as_dict(self) -> dict[str, Tensor]:
        """``{name: scores}``."""
        return dict(zip(self.names, self.values))

    @property
    def widths(self) -> list[int]:
        """Channel level: the number of channels of each layer."""
        return [int(v.numel()) for v in self.values]


class Importance:
    """Base class of the importances in :data:`IMPORTANCES` (frozen dataclasses).

    Class attributes: ``name`` (its registry name), ``levels`` (what it can score, the first
    being its default), ``needs_data`` (whether it records the network on inputs).
    Subclasses implement :meth:`channel_scores` and/or :meth:`weight_scores`, and
    :meth:`check` if some networks cannot be scored.
    """

    name: ClassVar[str] = ""
    levels: ClassVar[tuple[str, ...]] = ("channel",)
    needs_data: ClassVar[bool] = False

    def __call__(self, model: nn.Module, inputs: Inputs | None = None, *, level: str | None = None) -> Scores:
        """Score ``model`` at ``level`` (default: the importance's first level).

        Raises:
            ValueError: an unknown level or one this importance cannot score, or a data-driven
                importance called without ``inputs``.
        """
        level = self.levels[0] if level is None else level
        if level not in LEVELS:
            raise ValueError(f"level={level!r}: expected one of {', '.join(LEVELS)}")
        if level not in self.levels and not (level == "channel" and "weight" in self.levels):
            by_weight = [n for n in IMPORTANCES if "weight" in IMPORTANCES.get(n).levels]
            raise ValueError(f"importance {self.name!r} scores {' and '.join(self.levels)}s, not single weights; "
                             f"for weights use one of: {', '.join(by_weight)}")
        if self.needs_data and inputs is None:
            raise ValueError(f"importance {self.name!r} records the network's activity: pass "
                             "inputs=Inputs(x, T=...) (a batch, the time steps, the encoding)")
        if inputs is not None and not isinstance(inputs, Inputs):
            raise ValueError(f"inputs={type(inputs).__name__}: expected snnkit.compress.importance.Inputs or None")
        self.check(model)
        if level == "weight":
            names = prunable_weights(model)
            return Scores(self.name, "weight", tuple(names), tuple(self.weight_scores(model, inputs, names)))
        layers = prunable_layers(model)
        if "channel" in self.levels:
            values, curves = self.channel_scores(model, inputs, layers)
        else:  # a channel scores the sum of its filter's weight scores
            feeding = feeding_layers(model)
            names = [f"{feeding[n]}.weight" for n in layers]
            values = [s.abs().flatten(1).sum(1) for s in self.weight_scores(model, inputs, names)]
            curves = None
        return Scores(self.name, "channel", tuple(layers), tuple(values), None if curves is None else tuple(curves))

    @classmethod
    def check(cls, model: nn.Module) -> None:
        """Raise ValueError, saying why, if this importance cannot score ``model``; the
        base class scores every network. Called before scoring, and by methods that train
        before they score (so that a refusal comes before the training)."""

    def channel_scores(self, model: nn.Module, inputs: Inputs | None,
                       layers: list[str]) -> tuple[list[Tensor], list[Tensor] | None]:
        """(C,) scores of each prunable layer, and PCA curves or None."""
        raise NotImplementedError  # pragma: no cover - abstract

    def weight_scores(self, model: nn.Module, inputs: Inputs | None, names: list[str]) -> list[Tensor]:
        """Scores shaped like each named weight."""
        raise NotImplementedError  # pragma: no cover - abstract


#: name -> importance class; ``IMPORTANCES.get(name)(**options)`` is an :class:`Importance`.
IMPORTANCES: Registry[type[Importance]] = Registry("importance")


def _register(cls: type[Importance]) -> type[Importance]:
    IMPORTANCES.register(cls.name, cls)
    return cls


def score(model: nn.Module, importance: str | Importance, inputs: Inputs | None = None, *,
          level: str | None = None, **options) -> Scores:
    """Scores of ``model`` by ``importance`` (a name with its ``options``, or an instance).

    Raises:
        ValueError: an unknown name, or an option the importance does not take (the message
            lists the ones it takes).
    """
    if isinstance(importance, Importance):
        if options:
            raise ValueError(f"options {sorted(options)} given with an Importance instance; set them on it")
        return importance(model, inputs, level=level)
    return make_importance(importance, **options)(model, inputs, level=level)


def make_importance(name: str, **options) -> Importance:
    """``IMPORTANCES.get(name)(**options)``, with an error naming the options it takes."""
    cls = IMPORTANCES.get(name)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"importance {name!r} takes no option {unknown}; its options are: "
                         f"{', '.join(known) or '(none)'}")
    return cls(**options)


def with_seed(importance: str, options: dict, seed: int) -> dict:
    """``options`` with ``seed`` added when the importance takes a seed and none is given (the
    compression methods seed it from ``cfg.seed``)."""
    fields = {f.name for f in dataclasses.fields(IMPORTANCES.get(importance))}
    return {**options, "seed": seed} if "seed" in fields and "seed" not in options else dict(options)


def _activity(model: nn.Module, inputs: Inputs, kind: str) -> dict[str, Tensor]:
    return layer_activity(model, inputs.x, T=inputs.T, encoding=inputs.encoding, kind=kind,
                          batch_size=inputs.batch_size, seed=inputs.seed)


# ---------------------------------------------------------------------------------------
# pure maths: activity in, scores out


#: Why SVS refuses sequences (:func:`spike_map_rank`, :meth:`SVS.check`).
SVS_ON_SEQUENCES = (
    "SVS is not applicable on sequences: the time-averaged spike map of a 1-D channel is 1 x L, whose "
    "rank is at most 1, so its score would only say whether the channel fired at all and most channels "
    "would tie; score sequence models with 'sca', 'attention', 'pca-variance' or 'l1' instead"
)


def spike_map_rank(maps: Tensor, eps: float = 1e-6) -> Tensor:
    """Rank of every sample's time-averaged spike map, per channel.

    QP-SNN's SVS (Wei et al. 2025) averages a channel's spikes over time into an h x w
    matrix and counts its singular values. On sequences there is no matrix: a 1-D
    channel's map is 1 x L, of rank 0 (silent) or 1 (fired somewhere), so the rank says
    only whether the channel fired at all, almost always yes, and cannot rank channels.
    Maps (N, C, L) are refused for that reason (:data:`SVS_ON_SEQUENCES`) rather than
    scored with a number that looks like SVS and is not. (Taking the per-step T x L spike
    map instead would be a different criterion, bounded by the few time steps these nets
    use, not the paper's.) Linear layers are kept as the paper's method meets them in a
    VGG's classifier: a 1 x 1 map, rank 1 when the neuron fired.

    Args:
        maps: time-averaged spikes ``sum_t S[t] / T`` (spikes per step, in [0, 1]) of shape
            ``(N, C, H, W)`` (a conv layer: each ``(H, W)`` map is a matrix) or ``(N, C)``
            (a linear layer: each value is a 1 x 1 map, of rank 1 when non-zero).
        eps: singular values above ``eps`` count (computed in float64, where round-off
            is about 1e-14 on maps of this size).

    Returns:
        ``(N, C)`` float32 ranks, integers in [0, min(H, W)].

    Raises:
        ValueError: maps of any other shape; (N, C, L) maps of a 1-D conv with the reason above.
    """
    if maps.dim() == 3:
        raise ValueError(f"spike maps of shape {tuple(maps.shape)} (N, C, L): {SVS_ON_SEQUENCES}")
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


def feeding_layers(model: nn.Module) -> dict[str, str]:
    """``{prunable layer: the Conv/Linear module whose output channels it receives}``.

    A chain (VGG, or an imported net's SequentialSpec): the conv or hidden linear layer before
    the activation; ResNet: the block's ``conv1``.
    """
    wanted = set(prunable_layers(model))
    out, last = {}, None
    for name, m in model.named_modules():
        if isinstance(m, LAYER_TYPES):
            last = name
        elif name in wanted:
            out[name] = last
    return out


# ---------------------------------------------------------------------------------------
# the importances


@_register
@dataclass(frozen=True)
class PCAVariance(Importance):
    """A channel's variance of its time-averaged membrane potential, with the layer's PCA.

    Chowdhury, Garg and Roy (2021) keep as many channels as principal components explain a
    fraction of the membrane potential's variance (channels are the features, sample x
    position the observations). PCA says how many, not which: the scores here are each
    channel's own variance (the diagonal of the covariance whose eigenvalues give the
    curves), and the scores carry the cumulative variance curves for the ``"variance"``
    planner.
    """

    name: ClassVar[str] = "pca-variance"
    needs_data: ClassVar[bool] = True

    def channel_scores(self, model, inputs, layers):
        mem = _activity(model, inputs, "membrane")
        curves = [torch.cumsum(explained_variance(mem[n]), dim=0) for n in layers]
        values = [feature_matrix(mem[n]).double().var(dim=0, unbiased=False).float() for n in layers]
        return values, curves


@_register
@dataclass(frozen=True)
class SVS(Importance):
    """Singular value of spike maps (Wei et al. 2025): a channel's score is the rank of each
    sample's time-averaged spike map, averaged over all samples (:func:`svs_scores`).

    A linear hidden layer has 1 x 1 maps: its score is the fraction of samples on which the
    channel fires at all. A network on sequences (1-D convolutions) is refused: its maps are
    1 x L, where the rank says no more than that (:func:`spike_map_rank`).
    """

    name: ClassVar[str] = "svs"
    needs_data: ClassVar[bool] = True
    eps: float = 1e-6

    @classmethod
    def check(cls, model: nn.Module) -> None:
        conv = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv1d)), None)
        if conv is not None:
            raise ValueError(f"importance 'svs' on a network with 1-D convolutions ({conv}): {SVS_ON_SEQUENCES}")

    def channel_scores(self, model, inputs, layers):
        spikes = _activity(model, inputs, "spikes")
        return [svs_scores(spikes[n], self.eps) for n in layers], None


@_register
@dataclass(frozen=True)
class SCA(Importance):
    """Spiking channel activity (the baseline of Wei et al. 2025): a channel's mean L1
    membrane potential ``mean |U[t]|`` over samples, positions and the T steps (:func:`sca_scores`)."""

    name: ClassVar[str] = "sca"
    needs_data: ClassVar[bool] = True

    def channel_scores(self, model, inputs, layers):
        mem = _activity(model, inputs, "membrane-magnitude")
        return [sca_scores(mem[n]) for n in layers], None


@_register
@dataclass(frozen=True)
class Attention(Importance):
    """A channel's share of its layer's attention map: the mean over samples and positions of
    its squared firing rate ``F_c^2``.

    The attention map of a layer (Zagoruyko and Komodakis 2017; what Kundu et al. 2021 guide
    their compressed network by) is ``sum_c F_c^2`` over channels; a channel that adds little
    to it changes little of where the layer looks.
    """

    name: ClassVar[str] = "attention"
    needs_data: ClassVar[bool] = True

    def channel_scores(self, model, inputs, layers):
        rates = _activity(model, inputs, "spikes")
        return [feature_matrix(rates[n]).double().pow(2).mean(0).float() for n in layers], None


@_register
@dataclass(frozen=True)
class Magnitude(Importance):
    """``|w|`` of every weight as the forward pass uses it (masked and quantized); at channel
    level the L1 norm of the channel's filter (as ``"l1"``)."""

    name: ClassVar[str] = "magnitude"
    levels: ClassVar[tuple[str, ...]] = ("weight",)

    def weight_scores(self, model, inputs, names):
        return [effective_weight(model, n).abs() for n in names]


@_register
@dataclass(frozen=True)
class L1(Magnitude):
    """Magnitude baseline of Wei et al. (2025): the L1 norm of the filter producing each
    channel (:func:`l1_filter_scores` of the effective weight, quantized if a quantizer is
    attached); at weight level ``|w|``."""

    name: ClassVar[str] = "l1"
    levels: ClassVar[tuple[str, ...]] = ("channel", "weight")

    def channel_scores(self, model, inputs, layers):
        feeding = feeding_layers(model)
        return [l1_filter_scores(effective_weight(model, f"{feeding[n]}.weight")) for n in layers], None


@_register
@dataclass(frozen=True)
class LAMP(Importance):
    """Layer-adaptive magnitude (Lee et al. 2021; Gou et al. 2025 prune SNNs with it):
    :func:`~snnkit.compress.lamp.lamp_scores` of each effective weight, so entries already
    pruned score 0 and add nothing to the others' denominators."""

    name: ClassVar[str] = "lamp"
    levels: ClassVar[tuple[str, ...]] = ("weight",)

    def weight_scores(self, model, inputs, names):
        return [lamp_scores(effective_weight(model, n)) for n in names]


@_register
@dataclass(frozen=True)
class Random(Importance):
    """Seeded uniform scores: every layer's channels (or weights) draw from one generator
    seeded with ``seed``, layer after layer. The baseline any importance must beat."""

    name: ClassVar[str] = "random"
    levels: ClassVar[tuple[str, ...]] = ("channel", "weight")
    seed: int = 0

    def channel_scores(self, model, inputs, layers):
        gen = torch.Generator().manual_seed(self.seed)
        return [torch.rand(c, generator=gen) for c in model.spec.widths], None

    def weight_scores(self, model, inputs, names):
        gen = torch.Generator().manual_seed(self.seed)
        return [torch.rand(tuple(effective_weight(model, n).shape), generator=gen) for n in names]


def score_stability(
    model: nn.Module,
    batches: Sequence[Tensor],
    importance: str = "svs",
    *,
    T: int,
    encoding: str = "direct",
    **options,
) -> dict[str, float]:
    """How much an importance's channel scores agree from one input batch to the next.

    The importance scores every batch on its own; per layer the result is the mean pairwise
    cosine similarity of those score vectors (:func:`pairwise_cosine`), in [0, 1] for
    non-negative scores (1: every batch ranks and weighs the channels alike).

    Args:
        model: the trained spiking network.
        batches: two or more input batches, each (B, C, H, W) (or a list of ``(x, y)``).
        importance: an :data:`IMPORTANCES` name.
        T, encoding: how the batches are run.
        options: the importance's options.

    Returns:
        ``{prunable layer: mean pairwise cosine similarity}``.
    """
    parts = [b[0] if isinstance(b, (tuple, list)) else b for b in batches]
    if len(parts) < 2:
        raise ValueError(f"{len(parts)} batch(es): expected at least 2 to compare scores across batches")
    imp = make_importance(importance, **options)
    runs = [imp(model, Inputs(b, T=T, encoding=encoding), level="channel") for b in parts]
    return {name: pairwise_cosine(torch.stack([r.values[i] for r in runs]))
            for i, name in enumerate(runs[0].names)}
