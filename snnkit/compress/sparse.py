"""Sparse learning at a fixed global density, and the spiking stage that follows it.

Attention-guided compression (Kundu, Datta, Pedram and Beerel 2021) trains its compressed
network *sparse from the start*: a mask keeps a fixed fraction of the network, and while
training, the mask moves. This module implements that loop after sparse momentum (Dettmers
and Zettlemoyer 2019)::

    cfg = SparseConfig(density=0.05)                     # 5 % of the weights, i.e. 20x
    student, run = attention_guided(meta, data, TrainConfig(epochs=20, lr=1e-2), cfg, weight=0.5)
    run.masks, run.densities                             # final masks; per-layer densities over time

(:func:`attention_guided` is :func:`sparse_fit` with an
:class:`~snnkit.compress.attention.AttentionTransfer` term.)

**Units.** The mask keeps *units*: single weights (``granularity="irregular"``) or whole
output channels (``"channel"``: a conv filter or a hidden linear unit, every weight that
produces that channel). ``density`` is the fraction of units kept over all masked layers,
and it is exact: ``round(density * units)`` units are active at every step.

**Redistribution by momentum** (``redistribution="momentum"``). Every ``interval``
optimizer steps (default: once an epoch, not after the last):

1. every layer's share is the mean magnitude of the *normalised momentum* of its active
   units, ``m / (sqrt(v) + 1e-8)`` with ``m <- 0.9 m + 0.1 g`` and ``v <- 0.999 v + 0.001
   g^2`` (Adam's moments; sparse momentum uses these when training with Adam). ``g`` is
   the gradient of the loss with respect to the effective (masked) weight, dense, so it
   exists for masked weights too. Normalising matters: with the raw momentum, a wide
   layer's small per-weight gradients starved it (the 256-unit hidden layer of the digits
   VGG fell to a handful of weights);
2. every layer prunes the fraction ``p`` of its active units with the smallest weight
   magnitude (at least one unit stays), ``p`` decaying from ``prune_rate`` to 0 on a
   cosine over training;
3. the units pruned over all layers are regrown, split between layers by their shares
   (largest remainders, no layer above its size), each layer regrowing its inactive units
   of largest normalised momentum.

So the densities of the layers drift towards where the gradient is, and the global count
never changes. ``redistribution="none"`` regrows every layer's pruned units in that same
layer (fixed per-layer densities; what remains is the prune-and-regrow of the mask inside
each layer).

Regrown single weights start at 0 (as in sparse momentum). Regrown channels start from
their stored values (the last trained ones, or the initial ones): a channel whose weights
are all zero has a pre-activation of 0, where ReLU passes no gradient, so it would never
train. For the same reason no momentum reaches an inactive *channel*, so channels are
regrown at random among the inactive ones (seeded; ties between irregular weights are
broken the same way).

**The spiking stage.** :func:`to_snn` converts a compressed ANN into an SNN with thresholds
from a high percentile of the pre-activations and re-applies its masks, which then stay
frozen: :func:`finetune_snn` trains the weights and one threshold and one leak per layer
with direct input, the masked weights staying exactly zero. The surrogate gradient is the
paper's ``0.3 * max(0, 1 - |U / theta - 1|)`` with each layer's current threshold.
:func:`spiking_stage` does both; :func:`compressed_variants` trains the compared methods
(attention-guided, sparse without attention, magnitude pruning) at one number of weights.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..convert import convert
from ..models import Net, VGGSpec, build, lif_layers
from ..neurons import LIF
from ..surrogate import Triangular
from ..recipes import Hybrid
from ..train import History, TrainConfig, evaluate, fit
from .attention import AttentionTransfer
from .criteria import Selection
from .masks import apply_masks, masks_of, prunable_weights, prune_global, remove_masks
from .surgery import shrink

__all__ = [
    "GRANULARITIES",
    "REDISTRIBUTIONS",
    "SparseConfig",
    "SparseRun",
    "SparseTraining",
    "allocate",
    "initial_masks",
    "redistribute",
    "unit_scores",
    "expand",
    "sparse_weights",
    "sparse_fit",
    "attention_guided",
    "magnitude_baseline",
    "METHODS",
    "compressed_variants",
    "nonzero_weights",
    "channel_selection",
    "to_snn",
    "follow_thresholds",
    "finetune_snn",
    "spiking_stage",
]

#: What one unit of a mask is: a single weight, or a whole output channel.
GRANULARITIES = ("irregular", "channel")
#: How the units pruned at a redistribution are shared out between layers.
REDISTRIBUTIONS = ("momentum", "none")


@dataclass(frozen=True)
class SparseConfig:
    """Settings of sparse learning.

    Attributes:
        density: fraction of units kept over all masked layers, in (0, 1].
        granularity: "irregular" (a unit is a weight) or "channel" (an output channel).
        redistribution: "momentum" (layers' shares by the mean momentum magnitude of their
            active units) or "none" (every layer keeps its density).
        prune_rate: fraction of each layer's active units pruned and regrown at the first
            redistribution, in [0, 1); it decays to 0 on a cosine over training.
        momentum: decay of the gradient average ``m``, in [0, 1) (``v`` decays by 0.999).
        interval: optimizer steps between redistributions (None: one epoch).
        seed: seeds the initial mask and the tie-breaking of regrowth.
    """

    density: float
    granularity: str = "irregular"
    redistribution: str = "momentum"
    prune_rate: float = 0.5
    momentum: float = 0.9
    interval: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.density, bool) or not isinstance(self.density, (int, float)) or not 0 < self.density <= 1:
            raise ValueError(f"density={self.density!r}: expected a fraction in (0, 1] (of the units kept)")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity={self.granularity!r}: expected one of {GRANULARITIES}")
        if self.redistribution not in REDISTRIBUTIONS:
            raise ValueError(f"redistribution={self.redistribution!r}: expected one of {REDISTRIBUTIONS}")
        if not 0 <= self.prune_rate < 1:
            raise ValueError(f"prune_rate={self.prune_rate!r}: expected a fraction in [0, 1)")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum={self.momentum!r}: expected a number in [0, 1)")
        if self.interval is not None and not (isinstance(self.interval, int) and self.interval >= 1):
            raise ValueError(f"interval={self.interval!r}: expected an integer >= 1 (optimizer steps) or None")


# ---------------------------------------------------------------------------------------
# pure pieces: units, allocation, redistribution


def sparse_weights(model: nn.Module, granularity: str = "irregular") -> list[str]:
    """Names of the weights a mask of ``granularity`` covers.

    "irregular": every Conv2d and Linear weight. "channel": all but the output layer (its
    outputs are the classes); the net must have no biases and no batch-norm, since a
    removed channel must output exactly zero.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity={granularity!r}: expected one of {GRANULARITIES}")
    if granularity == "irregular":
        return prunable_weights(model)
    spec = getattr(model, "spec", None)
    if not isinstance(spec, VGGSpec):
        raise ValueError(f"channel granularity needs a VGG-style net from snnkit.models.build; got {spec!r}")
    if spec.bias or spec.batch_norm:
        raise ValueError(f"channel granularity needs a net without biases and batch-norm (a removed channel "
                         f"must output zero); got bias={spec.bias}, batch_norm={spec.batch_norm}")
    return prunable_weights(model, skip_last=True)


def unit_scores(values: Tensor, granularity: str) -> Tensor:
    """Per-unit magnitude of a weight-shaped tensor: ``|v|`` (irregular) or the mean of
    ``|v|`` over each output channel's weights, (C_out, ...) -> (C_out,) (channel)."""
    if granularity == "irregular":
        return values.abs()
    return values.abs().flatten(1).mean(1)


def expand(unit_mask: Tensor, shape: Sequence[int], granularity: str) -> Tensor:
    """A unit mask as a 0/1 float mask of the weight's ``shape``."""
    mask = unit_mask.float()
    if granularity == "channel":
        mask = mask.reshape(-1, *([1] * (len(shape) - 1))).expand(*shape)
    return mask.contiguous()


def allocate(total: int, shares: Sequence[float], capacity: Sequence[int]) -> list[int]:
    """Split ``total`` whole units between layers in proportion to ``shares``, none above its ``capacity``.

    Largest-remainder rounding; what a full layer cannot take goes to the others in
    proportion to their shares (equally when every remaining share is 0). The result sums to
    ``total`` exactly.

    Raises:
        ValueError: ``total`` exceeds the summed capacity, or a share is negative.
    """
    n = len(shares)
    if len(capacity) != n:
        raise ValueError(f"{n} shares and {len(capacity)} capacities: expected one of each per layer")
    if any(s < 0 or not math.isfinite(s) for s in shares):
        raise ValueError(f"shares={list(shares)}: expected finite numbers >= 0")
    if total < 0 or total > sum(capacity):
        raise ValueError(f"total={total}: expected 0 <= total <= {sum(capacity)} (the summed capacity)")
    out = [0] * n
    left = total
    open_ = [i for i in range(n) if capacity[i] > 0]
    while left > 0:
        weights = [shares[i] for i in open_]
        if sum(weights) <= 0:
            weights = [1.0] * len(open_)
        norm = sum(weights)
        ideal = [left * w / norm for w in weights]
        give = [min(int(math.floor(v)), capacity[i] - out[i]) for v, i in zip(ideal, open_)]
        rest = left - sum(give)
        # the largest remainders get one more unit each, where there is room
        order = sorted(range(len(open_)), key=lambda j: (-(ideal[j] - math.floor(ideal[j])), j))
        for j in order:
            if rest == 0:
                break
            if give[j] < capacity[open_[j]] - out[open_[j]]:
                give[j] += 1
                rest -= 1
        for j, i in enumerate(open_):
            out[i] += give[j]
        left = total - sum(out)
        open_ = [i for i in open_ if out[i] < capacity[i]]
    return out


def _ranked(scores: Tensor, generator: torch.Generator | None) -> Tensor:
    """Indices of ``scores`` (flat) from highest to lowest, ties in a seeded random order."""
    flat = scores.flatten()
    perm = torch.randperm(flat.numel(), generator=generator)
    return perm[torch.argsort(flat[perm], descending=True, stable=True)]


def initial_masks(sizes: Mapping[str, Sequence[int]], density: float, *, seed: int = 0) -> dict[str, Tensor]:
    """Random unit masks with the same density in every layer and an exact global count.

    Args:
        sizes: ``{name: unit shape}`` (the weight's shape, or ``(C_out,)`` for channels).
        density: fraction of all units kept, in (0, 1].
        seed: seeds the positions.

    Returns:
        ``{name: bool tensor of the unit shape}`` holding ``round(density * units)`` True
        values over all layers (at least one per layer), split in proportion to size.
    """
    if not 0 < density <= 1:
        raise ValueError(f"density={density!r}: expected a fraction in (0, 1]")
    numel = {n: math.prod(s) for n, s in sizes.items()}
    total = max(len(numel), int(round(density * sum(numel.values()))))
    counts = [c + 1 for c in allocate(total - len(numel), list(numel.values()), [v - 1 for v in numel.values()])]
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for (name, shape), k in zip(sizes.items(), counts):
        mask = torch.zeros(numel[name], dtype=torch.bool)
        mask[torch.randperm(numel[name], generator=gen)[:k]] = True
        out[name] = mask.reshape(tuple(shape))
    return out


def redistribute(
    masks: Mapping[str, Tensor],
    magnitude: Mapping[str, Tensor],
    momentum: Mapping[str, Tensor],
    prune_fraction: float,
    *,
    redistribution: str = "momentum",
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """One prune-and-regrow step of sparse momentum; the number of active units is unchanged.

    Args:
        masks: ``{name: bool unit mask}``.
        magnitude: ``{name: per-unit weight magnitude}`` (same shapes): the active units with
            the smallest are pruned.
        momentum: ``{name: per-unit momentum magnitude}`` (same shapes): it sets the layers'
            shares (mean over each layer's active units, before pruning) and which inactive
            units regrow (the largest).
        prune_fraction: fraction of each layer's active units to prune, in [0, 1]
            (``round(fraction * active)``, leaving at least one).
        redistribution: "momentum" (regrowth split by the shares) or "none" (each layer
            regrows what it pruned).
        generator: seeds the order of ties.

    Returns:
        New ``{name: bool unit mask}``; the total count of True values equals the input's.
    """
    if redistribution not in REDISTRIBUTIONS:
        raise ValueError(f"redistribution={redistribution!r}: expected one of {REDISTRIBUTIONS}")
    if not 0 <= prune_fraction <= 1:
        raise ValueError(f"prune_fraction={prune_fraction!r}: expected a fraction in [0, 1]")
    names = list(masks)
    for n in names:
        if magnitude[n].shape != masks[n].shape or momentum[n].shape != masks[n].shape:
            raise ValueError(f"layer {n!r}: mask {tuple(masks[n].shape)}, magnitude {tuple(magnitude[n].shape)} "
                             f"and momentum {tuple(momentum[n].shape)} must have the same shape")
    active = {n: int(masks[n].sum()) for n in names}
    shares = [float(momentum[n][masks[n]].abs().mean()) if active[n] else 0.0 for n in names]
    new, pruned = {}, []
    for n in names:
        m = masks[n].flatten().clone()
        k = min(int(round(prune_fraction * active[n])), max(active[n] - 1, 0))
        if k:
            # the k active units of smallest magnitude
            score = torch.where(m, -magnitude[n].flatten().float(), torch.tensor(-math.inf))
            m[_ranked(score, generator)[:k]] = False
        new[n], pruned = m, pruned + [k]
    capacity = [int((~new[n]).sum()) for n in names]
    if redistribution == "momentum":
        grow = allocate(sum(pruned), shares, capacity)
    else:
        grow = pruned
    for n, g in zip(names, grow):
        if g:
            score = torch.where(new[n], torch.tensor(-math.inf), momentum[n].flatten().abs().float())
            new[n][_ranked(score, generator)[:g]] = True
        new[n] = new[n].reshape(masks[n].shape)
    return new


# ---------------------------------------------------------------------------------------
# the training loop


def _owner(model: nn.Module, name: str) -> nn.Module:
    """The module owning the weight ``name`` (``"body.layers.0.weight"`` -> ``body.layers.0``)."""
    return model.get_submodule(name.rpartition(".")[0])


class _GradCapture:
    """Forward pre-hook: after the mask's own hook has set ``module.weight = orig * mask``,
    keep that tensor's dense gradient (dL/dW for every entry, masked ones included)."""

    def __init__(self, store: dict[str, Tensor], name: str) -> None:
        self.store, self.name = store, name

    def __call__(self, module: nn.Module, inputs) -> None:
        w = module.weight
        if w.requires_grad and w.grad_fn is not None and torch.is_grad_enabled():
            w.register_hook(self._keep)

    def _keep(self, grad: Tensor) -> None:
        if self.name in self.store:
            self.store[self.name] = self.store[self.name] + grad
        else:
            self.store[self.name] = grad.detach().clone()


class SparseTraining:
    """Keeps a moving mask on a model during :func:`snnkit.train.fit` (its ``after_step``).

    On creation the masks are applied (:func:`snnkit.compress.masks.apply_masks`) and
    gradient hooks installed; :meth:`after_step` updates the momentum and, every
    ``interval`` steps, redistributes; :meth:`close` removes the hooks (the masks stay).
    Usable as a context manager. See the module docstring for the rule.

    Args:
        model: the network to train sparse (modified in place).
        cfg: the sparse-learning settings.
        total_steps: optimizer steps of the whole run (sets the cosine decay and the last
            redistribution).
        steps_per_epoch: the default interval.
        masks: initial unit masks ``{name: bool tensor}`` (default :func:`initial_masks`).
    """

    def __init__(self, model: nn.Module, cfg: SparseConfig, *, total_steps: int, steps_per_epoch: int,
                 masks: Mapping[str, Tensor] | None = None) -> None:
        if total_steps < 1 or steps_per_epoch < 1:
            raise ValueError(f"total_steps={total_steps}, steps_per_epoch={steps_per_epoch}: expected integers >= 1")
        self.model, self.cfg = model, cfg
        self.names = sparse_weights(model, cfg.granularity)
        self.shapes = {n: tuple(_owner(model, n).weight.shape) for n in self.names}
        units = {n: (s if cfg.granularity == "irregular" else s[:1]) for n, s in self.shapes.items()}
        if masks is None:
            masks = initial_masks(units, cfg.density, seed=cfg.seed)
        elif set(masks) != set(self.names):
            raise ValueError(f"masks for {sorted(masks)}; expected one for each of {self.names}")
        self.masks = {n: masks[n].bool().reshape(units[n]).clone() for n in self.names}
        self.total_steps, self.interval = total_steps, cfg.interval or steps_per_epoch
        self.step = 0
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)
        devices = {n: _owner(model, n).weight.device for n in self.names}
        self.momentum = {n: torch.zeros(self.shapes[n], device=devices[n]) for n in self.names}
        self.second = {n: torch.zeros(self.shapes[n], device=devices[n]) for n in self.names}
        self._grads: dict[str, Tensor] = {}
        apply_masks(model, {n: expand(self.masks[n], self.shapes[n], cfg.granularity) for n in self.names})
        self._zero_inactive()
        # registered after the masks' own pre-hooks, so they see ``weight = orig * mask``
        self._handles = [_owner(model, n).register_forward_pre_hook(_GradCapture(self._grads, n))
                         for n in self.names]
        #: per-layer weight densities: at the start, then after every redistribution
        self.densities: list[dict[str, float]] = [self.layer_densities()]
        #: optimizer steps at which :attr:`densities` were taken
        self.density_steps: list[int] = [0]

    # -- reading -----------------------------------------------------------------------
    @property
    def active_units(self) -> int:
        """Units kept over all masked layers (constant during training)."""
        return int(sum(int(m.sum()) for m in self.masks.values()))

    @property
    def total_units(self) -> int:
        return int(sum(m.numel() for m in self.masks.values()))

    def layer_densities(self) -> dict[str, float]:
        """``{weight name: fraction of its weights kept}`` under the current masks."""
        return {n: float(expand(m, self.shapes[n], self.cfg.granularity).mean()) for n, m in self.masks.items()}

    def normalized_momentum(self, name: str) -> Tensor:
        """``m / (sqrt(v) + eps)`` of one weight: the momentum in units of the gradient's RMS."""
        return self.momentum[name] / (self.second[name].sqrt() + 1e-8)

    def prune_fraction(self, step: int) -> float:
        """The prune rate at optimizer ``step``: ``prune_rate * (1 + cos(pi * step / total)) / 2``."""
        return self.cfg.prune_rate * 0.5 * (1 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))

    # -- training ----------------------------------------------------------------------
    def _zero_inactive(self) -> None:
        """Irregular: inactive weights hold 0, so a regrown one starts at 0."""
        if self.cfg.granularity != "irregular":
            return
        with torch.no_grad():
            for n in self.names:
                orig = _owner(self.model, n).weight_orig
                orig.mul_(self.masks[n].to(orig.dtype))

    def after_step(self, model: nn.Module | None = None) -> None:
        """Call after every optimizer step (``fit(after_step=...)``)."""
        beta = self.cfg.momentum
        for n in self.names:
            g = self._grads.pop(n, None)
            if g is not None:
                self.momentum[n].mul_(beta).add_(g, alpha=1 - beta)
                self.second[n].mul_(0.999).addcmul_(g, g, value=0.001)
        self._grads.clear()
        self.step += 1
        if self.step % self.interval == 0 and self.step < self.total_steps:
            self.redistribute()

    def redistribute(self) -> None:
        """Prune and regrow now (see :func:`redistribute`); re-applies the masks."""
        gran = self.cfg.granularity
        magnitude, momentum = {}, {}
        for n in self.names:
            module = _owner(self.model, n)
            w = (module.weight_orig * module.weight_mask).detach()
            magnitude[n] = unit_scores(w, gran).cpu()  # the masks live on the CPU
            momentum[n] = unit_scores(self.normalized_momentum(n), gran).cpu()
        if gran == "channel":  # see the module docstring: no momentum reaches an inactive channel
            for n in self.names:
                momentum[n] = torch.where(self.masks[n], momentum[n], torch.zeros_like(momentum[n]))
        self.masks = redistribute(self.masks, magnitude, momentum, self.prune_fraction(self.step),
                                  redistribution=self.cfg.redistribution, generator=self.generator)
        apply_masks(self.model, {n: expand(self.masks[n], self.shapes[n], gran) for n in self.names})
        self._zero_inactive()
        self.densities.append(self.layer_densities())
        self.density_steps.append(self.step)

    def close(self) -> None:
        """Remove the gradient hooks (the masks stay on the model)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "SparseTraining":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class SparseRun:
    """What :func:`sparse_fit` returns.

    Attributes:
        history: the :class:`~snnkit.train.History` of the run.
        masks: the final weight masks ``{weight name: 0/1 tensor}`` (also on the model).
        unit_masks: the final unit masks ``{weight name: bool (weight shape or (C_out,))}``.
        densities: per-layer weight densities at the start and after every redistribution.
        density_steps: the optimizer step of each entry of ``densities``.
        density: the fraction of units kept (as configured, exact up to rounding).
    """

    history: History
    masks: dict[str, Tensor]
    unit_masks: dict[str, Tensor]
    densities: list[dict[str, float]] = field(default_factory=list)
    density_steps: list[int] = field(default_factory=list)
    density: float = float("nan")


def sparse_fit(
    model: nn.Module,
    data,
    cfg: TrainConfig,
    sparse: SparseConfig,
    *,
    extra_loss: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None,
    masks: Mapping[str, Tensor] | None = None,
    desc: str = "sparse",
) -> SparseRun:
    """Train ``model`` in place under a moving mask at a fixed global density.

    Args:
        model: an ANN or SNN from :func:`snnkit.models.build` (not masked yet).
        data: a :class:`~snnkit.data.Dataset`.
        cfg: the training settings (passed to :func:`snnkit.train.fit`).
        sparse: the sparse-learning settings.
        extra_loss: added to the loss, e.g. an :class:`~snnkit.compress.attention.AttentionTransfer`.
        masks: initial unit masks (default: random, see :func:`initial_masks`).
    """
    train_split = getattr(data, "train", data)
    steps_per_epoch = -(-len(train_split) // cfg.batch_size)
    with SparseTraining(model, sparse, total_steps=max(1, cfg.epochs * steps_per_epoch),
                        steps_per_epoch=steps_per_epoch, masks=masks) as st:
        history = fit(model, data, cfg, after_step=st.after_step, extra_loss=extra_loss, desc=desc)
    return SparseRun(history, masks_of(model), {n: m.clone() for n, m in st.masks.items()}, st.densities,
                     st.density_steps, st.active_units / st.total_units)


def channel_selection(model: Net, unit_masks: Mapping[str, Tensor]) -> Selection:
    """The channels that channel-granularity sparse learning kept, as a :class:`Selection`.

    Scores are the unit masks (1 kept, 0 removed), so :meth:`Selection.keep` gives the
    active channels and :func:`snnkit.compress.surgery.shrink` turns the masked model
    into a physically smaller one that computes the same function. The layers are named
    by the activation after each masked layer (a ReLU, or the LIF layer of the spiking
    twin: the same names).
    """
    names = sparse_weights(model, "channel")
    if list(unit_masks) != names or any(m.dim() != 1 for m in unit_masks.values()):
        raise ValueError(f"unit masks for {list(unit_masks)}: expected one (C_out,) channel mask for each of {names}")
    body = list(model.body.layers)
    index = {f"body.layers.{i}.weight": i for i in range(len(body))}
    layers = []
    for n in names:
        after = next(j for j in range(index[n] + 1, len(body)) if isinstance(body[j], (nn.ReLU, LIF)))
        layers.append(f"body.layers.{after}")
    masks = [unit_masks[n].bool() for n in names]
    return Selection(layers=layers, widths=[max(1, int(m.sum())) for m in masks], original=[m.numel() for m in masks],
                     scores=[m.float() for m in masks], criterion="sparse-momentum", options={})


def attention_guided(
    meta: Net,
    data,
    cfg: TrainConfig,
    sparse: SparseConfig,
    weight: float,
    *,
    seed: int = 0,
    desc: str = "attention-guided",
) -> tuple[Net, SparseRun]:
    """Train a compressed ANN from scratch, sparse, guided by the attention maps of ``meta``.

    A fresh ANN of ``meta.spec`` (initial weights from ``seed``) is trained with
    cross-entropy plus the attention-transfer term of weight ``weight``
    (:class:`~snnkit.compress.attention.AttentionTransfer`) under :func:`sparse_fit`.
    ``weight=0`` is plain sparse learning. Returns the student and its :class:`SparseRun`.
    """
    student = build(meta.spec, spiking=False, seed=seed)
    with AttentionTransfer(meta, student, weight) as at:
        run = sparse_fit(student, data, cfg, sparse, extra_loss=at if weight > 0 else None, desc=desc)
    return student, run


def magnitude_baseline(dense: Net, data, cfg: TrainConfig, density: float, *, desc: str = "magnitude") -> Net:
    """The comparison: ``dense`` pruned once to ``density`` by global weight magnitude, then
    fine-tuned with the mask fixed (a new, masked copy; ``dense`` is not modified).

    The mask covers every Conv2d and Linear weight, as irregular sparse learning's does, so
    both keep the same number of weights.
    """
    if not 0 < density <= 1:
        raise ValueError(f"density={density!r}: expected a fraction in (0, 1]")
    pruned = copy.deepcopy(dense)
    prune_global(pruned, 1.0 - density)
    fit(pruned, data, cfg, desc=desc)
    return pruned


def nonzero_weights(model: nn.Module) -> int:
    """Non-zero entries of the Conv2d and Linear weights (masked ones count as zero)."""
    return sum(int(torch.count_nonzero(m.weight.detach())) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))


#: The methods :func:`compressed_variants` trains, in order.
METHODS = ("attention-guided", "sparse, no attention", "magnitude")


def compressed_variants(
    meta: Net,
    data,
    cfg: TrainConfig,
    sparse: SparseConfig,
    weight: float,
    *,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
) -> tuple[dict[str, Net], dict[str, SparseRun]]:
    """The compressed ANNs a comparison needs, all at the same number of weights.

    * ``"attention-guided"``: :func:`attention_guided` with ``weight``;
    * ``"sparse, no attention"``: the same with weight 0;
    * ``"magnitude"``: :func:`magnitude_baseline` at the weight density the first sparse
      method reached (for channel granularity, that of the shrunk network).

    Channel-granularity students are cut to physically smaller networks
    (:func:`snnkit.compress.surgery.shrink` of :func:`channel_selection`). ``seed`` seeds
    the students' initial weights; ``cfg.seed`` the data order; ``sparse.seed`` the masks.

    Returns:
        ``({method: trained ANN}, {method: SparseRun})`` (runs for the sparse methods only).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods={list(methods)}: expected a non-empty selection of {METHODS}")
    anns: dict[str, Net] = {}
    runs: dict[str, SparseRun] = {}
    for method, w in (("attention-guided", weight), ("sparse, no attention", 0.0)):
        if method in methods:
            ann, run = attention_guided(meta, data, cfg, sparse, w, seed=seed, desc=method)
            if sparse.granularity == "channel":
                ann = shrink(ann, channel_selection(ann, run.unit_masks))
            anns[method], runs[method] = ann, run
    if "magnitude" in methods:
        reference = next(iter(anns.values()), None)
        density = sparse.density if reference is None else nonzero_weights(reference) / nonzero_weights(meta)
        anns["magnitude"] = magnitude_baseline(meta, data, cfg, density)
    return {m: anns[m] for m in methods}, runs


# ---------------------------------------------------------------------------------------
# the spiking stage


class _FollowThresholds:
    """``after_step``: reset every LIF layer's surrogate to ``Triangular(width=theta, scale)``
    with its current threshold theta (a class, so the model stays picklable)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __call__(self, model: nn.Module) -> None:
        follow_thresholds(model, self.scale)


def follow_thresholds(model: nn.Module, scale: float = 0.3) -> nn.Module:
    """Give every LIF layer the surrogate ``scale * max(0, 1 - |U / theta - 1|)`` at its threshold.

    That is :class:`~snnkit.surrogate.Triangular` with ``width = theta`` (the surrogate
    sees ``x = U - theta``); with a learnable threshold, call it after every step to track
    theta. Per-channel thresholds use their mean. Returns ``model``.
    """
    for _, lif in lif_layers(model):
        theta = float(lif.threshold.detach().abs().mean().clamp_min(1e-6))
        lif.surrogate = Triangular(width=theta, scale=scale)
    return model


@torch.no_grad()
def to_snn(ann: Net, x: Tensor, *, percentile: float = 99.7, mode: str = "weights",
           surrogate_scale: float = 0.3) -> Net:
    """The SNN twin of a (masked) ANN, thresholds from a percentile of the pre-activations.

    The ANN's masks are baked into a copy for :func:`snnkit.convert.convert` and put back
    on the SNN, where training cannot revive a masked weight. The LIF settings (learnable
    leak and threshold, readout) come from ``ann.spec``; the surrogate is set by
    :func:`follow_thresholds`.

    Args:
        ann: a trained ANN (masked or not); not modified.
        x: calibration inputs (B, C, H, W).
        percentile: of the ReLU pre-activations, in (0, 100] (the paper: 99.7).
        mode: "weights" (thresholds 1, weights rescaled by the percentiles) or
            "thresholds" (threshold = the percentile, as the paper words it). Both give
            the same spikes (:func:`snnkit.convert.convert`); "weights" keeps every layer
            at the same scale, so the fine-tuning's Adam steps (a fixed size per
            parameter) move every threshold and weight by the same relative amount; with
            "thresholds", layers with large percentiles hardly move.
    """
    masks = masks_of(ann)
    snn = convert(remove_masks(copy.deepcopy(ann)), x, percentile, mode=mode)
    if masks:
        apply_masks(snn, masks)
    return follow_thresholds(snn, surrogate_scale)


def spiking_stage(ann: Net, data, cfg: TrainConfig, *, percentile: float = 99.7, mode: str = "weights",
                  calibration: int = 512, surrogate_scale: float = 0.3, desc: str = "SNN") -> Hybrid:
    """Convert a (compressed) ANN with :func:`to_snn` and fine-tune it with :func:`finetune_snn`.

    Args:
        ann: the trained ANN (masked or not; not modified).
        data: a :class:`~snnkit.data.Dataset`; its first ``calibration`` training images set
            the percentiles, its test split gives the accuracies.
        cfg: the fine-tuning settings (``T``, direct input, epochs, learning rate).
        percentile, mode, surrogate_scale: as :func:`to_snn`.

    Returns:
        A :class:`~snnkit.recipes.Hybrid`: the ANN, the SNN right after conversion, the
        fine-tuned SNN and the test accuracy of each (ANN, converted and SNN at ``cfg.T``).
    """
    converted = to_snn(ann, data.train.x[:calibration].to(cfg.device), percentile=percentile, mode=mode,
                       surrogate_scale=surrogate_scale)
    snn = copy.deepcopy(converted)
    history = finetune_snn(snn, data, cfg, surrogate_scale=surrogate_scale, desc=desc)
    test = data.test
    return Hybrid(ann, converted, snn, evaluate(ann, test, cfg), evaluate(converted, test, cfg),
                  evaluate(snn, test, cfg), history)


def finetune_snn(snn: Net, data, cfg: TrainConfig, *, surrogate_scale: float = 0.3, desc: str = "SNN") -> History:
    """Fine-tune an SNN from :func:`to_snn`: weights, thresholds and leaks, masks frozen.

    The masks (if any) stay as they are: masked weights stay exactly zero. After every
    step the surrogates follow the learned thresholds (:func:`follow_thresholds`).
    """
    if not getattr(snn, "spiking", False):
        raise ValueError("finetune_snn() takes an SNN; got an ANN (convert it with to_snn first)")
    return fit(snn, data, cfg, after_step=_FollowThresholds(surrogate_scale), desc=desc)
