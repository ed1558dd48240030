"""Sparse learning at a fixed global density, and paper 2's method built on it.

Attention-guided compression (Kundu, Datta, Pedram and Beerel 2021) trains its compressed
network *sparse from the start*: a mask keeps a fixed fraction of the network, and while
training, the mask moves. This module implements that loop after sparse momentum (Dettmers
and Zettlemoyer 2019), and registers paper 2's method in :data:`~snnkit.compress.METHODS`::

    student = compress(meta_ann, data, "attention", TrainConfig(epochs=20, lr=1e-2), sparsity=0.95)
    student.model, student.info["sparse"].densities   # the sparse ANN; per-layer densities over time
    snn = compress(student.model, data, "convert", TrainConfig(epochs=6, T=5), percentile=99.7,
                   surrogate_scale=0.3)              # the spiking stage (snnkit.recipes)
    variants = attention_variants(meta_ann, data, ann_cfg, snn_cfg, sparsity=0.95, percentile=99.7,
                                  surrogate_scale=0.3)  # paper 2's comparison

(``"attention"`` is :func:`sparse_fit` with an
:class:`~snnkit.compress.attention.AttentionTransfer` term, on a student trained from scratch.)

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

**The spiking stage** is :func:`snnkit.recipes.spiking_stage` (the ``"convert"`` method): it
converts a compressed ANN into an SNN with thresholds from a high percentile of the
pre-activations and re-applies its masks, which then stay frozen while the weights, one
threshold and one leak per layer are fine-tuned with the paper's surrogate
``0.3 * max(0, 1 - |U / theta - 1|)`` at each layer's current threshold.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..convert import MODE, PERCENTILE
from ..models import Net, build, is_chain
from ..neurons import LIF
from ..recipes import spiking_stage
from ..train import History, TrainConfig, fit
from ..weights import LAYER_TYPES, apply_masks, count_nonzero, masks_of
from .attention import AttentionTransfer
from .core import METHODS, Compressed, Run, compress
from .masks import prunable_weights
from .planners import Selection
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
    "sparse_training",
    "VARIANTS",
    "attention_variants",
    "channel_selection",
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

    "irregular": every conv (1-D or 2-D) and linear weight. "channel": all but the output
    layer (its outputs are the classes) of a chain (a VGG net or an imported net's
    SequentialSpec, :func:`snnkit.models.is_chain`); the net must have no biases and no
    batch-norm, since a removed channel must output exactly zero.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity={granularity!r}: expected one of {GRANULARITIES}")
    if granularity == "irregular":
        return prunable_weights(model)
    spec = getattr(model, "spec", None)
    if not is_chain(spec):
        raise ValueError(f"channel granularity needs a chain-shaped net (a VGGSpec or SequentialSpec) from "
                         f"snnkit.models.build; got a {type(spec).__name__}")
    biased = [n for n, m in model.named_modules() if isinstance(m, LAYER_TYPES) and m.bias is not None]
    norms = [n for n, m in model.named_modules() if isinstance(m, _BatchNorm)]
    if biased or norms:
        raise ValueError(f"channel granularity needs a net without biases and batch-norm (a removed channel "
                         f"must output zero); got biases in {biased or 'no layer'} and batch-norm layers "
                         f"{norms or 'none'}")
    return prunable_weights(model, skip="last")


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

    def result(self, history: History) -> "SparseRun":
        """The :class:`SparseRun` of a training run that used this mask."""
        return SparseRun(history, masks_of(self.model), {n: m.clone() for n, m in self.masks.items()},
                         self.densities, self.density_steps, self.active_units / self.total_units)

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
    with sparse_training(model, data, cfg, sparse, masks) as st:
        history = fit(model, data, cfg, after_step=st.after_step, extra_loss=extra_loss, desc=desc)
    return st.result(history)


def sparse_training(model: nn.Module, data, cfg: TrainConfig, sparse: SparseConfig,
                    masks: Mapping[str, Tensor] | None = None) -> SparseTraining:
    """A :class:`SparseTraining` sized for ``cfg.epochs`` epochs over ``data``'s training split."""
    steps_per_epoch = -(-len(getattr(data, "train", data)) // cfg.batch_size)
    return SparseTraining(model, sparse, total_steps=max(1, cfg.epochs * steps_per_epoch),
                          steps_per_epoch=steps_per_epoch, masks=masks)


def channel_selection(model: Net, unit_masks: Mapping[str, Tensor]) -> Selection:
    """The channels that channel-granularity sparse learning kept, as a :class:`Selection`.

    Scores are the unit masks (1 kept, 0 removed), so :meth:`Selection.kept` gives the
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
                     scores=[m.float() for m in masks], importance="sparse-momentum")


# ---------------------------------------------------------------------------------------
# the method, and paper 2's comparison


@METHODS.register("attention")
def attention(model: nn.Module, data, cfg: TrainConfig, run: Run, *, sparsity: float | None = None,
              keep: float | None = None, granularity: str = "irregular", attention_weight: float = 0.5,
              redistribution: str = "momentum", prune_rate: float = 0.5) -> Compressed:
    """Attention-guided sparse learning (Kundu et al. 2021): a student ANN trained from scratch.

    ``model`` is the dense, trained meta-model (an ANN); a fresh ANN of its spec (initial
    weights, masks and data order all from ``cfg.seed``) trains ``cfg.epochs`` epochs under a
    moving mask at a fixed density, with cross-entropy plus the attention-transfer term of
    weight ``attention_weight`` (0: plain sparse learning). The result is an ANN: convert it
    with the ``"convert"`` method (the spiking stage).

    Params:
        sparsity: fraction of the weights removed (``granularity="irregular"``).
        keep: fraction of the channels kept (``granularity="channel"``; the student is then
            cut to a smaller net, :func:`channel_selection`).
        granularity, redistribution, prune_rate: see :class:`SparseConfig`.
        attention_weight: beta of the attention-transfer loss, >= 0.

    Info:
        ``sparse``: the :class:`SparseRun` (final masks, densities per layer over training).
    """
    if (sparsity is None) == (keep is None) or (granularity == "irregular") != (sparsity is not None):
        raise ValueError(f"sparsity={sparsity!r}, keep={keep!r} with granularity={granularity!r}: expected "
                         "sparsity (fraction of weights removed) for 'irregular', keep (fraction of channels "
                         "kept) for 'channel'")
    density = 1.0 - sparsity if sparsity is not None else keep
    sparse = SparseConfig(density=density, granularity=granularity, redistribution=redistribution,
                          prune_rate=prune_rate, seed=cfg.seed)
    student = build(model.spec, spiking=False, seed=cfg.seed)
    with AttentionTransfer(model, student, attention_weight) as at, \
            sparse_training(student, data, cfg, sparse) as st:
        step = run.train(student, cfg, "sparse learning", extra_loss=at if attention_weight > 0 else None,
                         after_step=st.after_step)
    result = st.result(step.history)
    if granularity == "channel":
        student = shrink(student, channel_selection(student, result.unit_masks))
    return run.result(student, 1, {"sparse": result})


@METHODS.register("convert")
def convert_method(model: nn.Module, data, cfg: TrainConfig, run: Run, *, percentile: float = PERCENTILE,
                   mode: str = MODE, calibration: int = 512, surrogate_scale: float | None = None) -> Compressed:
    """The spiking stage (:func:`snnkit.recipes.spiking_stage`): a trained, possibly compressed
    ANN converted to an SNN with percentile thresholds, its masks kept, fine-tuned
    ``cfg.epochs`` epochs at ``cfg.T``.

    Params:
        percentile, mode, calibration, surrogate_scale: see :func:`snnkit.recipes.to_snn`
            (paper 2: ``percentile=99.7``, ``surrogate_scale=0.3``).

    Info:
        ``converted``: the SNN right after conversion; ``ann_accuracy`` and
        ``converted_accuracy``: test accuracies of the ANN and of that SNN (NaN unless
        ``evaluate=True``).
    """
    hybrid = spiking_stage(model, data, cfg, percentile=percentile, mode=mode, calibration=calibration,
                           surrogate_scale=surrogate_scale, desc="convert: fine-tune", evaluate=run.evaluate)
    run.record(hybrid.snn, cfg, "fine-tune", hybrid.history, test_acc=hybrid.snn_accuracy)
    return run.result(hybrid.snn, cfg.T, {"converted": hybrid.converted, "ann_accuracy": hybrid.ann_accuracy,
                                         "converted_accuracy": hybrid.converted_accuracy})


#: The compressed networks of paper 2's comparison, at one number of weights.
VARIANTS = ("attention-guided", "sparse, no attention", "magnitude")


def attention_variants(
    meta: Net,
    data,
    ann_cfg: TrainConfig,
    snn_cfg: TrainConfig,
    *,
    sparsity: float | None = None,
    keep: float | None = None,
    granularity: str = "irregular",
    attention_weight: float = 0.5,
    percentile: float = PERCENTILE,
    surrogate_scale: float | None = None,
    variants: Sequence[str] = VARIANTS,
    evaluate: bool = True,
) -> dict[str, Compressed]:
    """Paper 2's comparison: compressed ANNs at one number of weights, each taken to an SNN.

    * ``"attention-guided"``: the ``"attention"`` method with ``attention_weight``;
    * ``"sparse, no attention"``: the same with weight 0;
    * ``"magnitude"``: the meta-model pruned once by global weight magnitude (``"prune"``)
      to the weight density the first sparse variant reached (for channel granularity, that
      of the cut network), fine-tuned as an ANN with ``ann_cfg``.

    Every ANN then goes through the ``"convert"`` method with ``snn_cfg``, ``percentile`` and
    ``surrogate_scale`` (the library's defaults; the paper uses 99.7 and 0.3). Seeds:
    ``ann_cfg.seed`` (students' initial weights, masks, data order) and ``snn_cfg.seed``.

    Returns:
        ``{variant: Compressed}``: each the ``"convert"`` run (an SNN), its ``info["ann"]``
        the ANN's own :class:`~snnkit.compress.core.Compressed` (``info["sparse"]`` of the
        sparse variants), in the order of ``variants``.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(f"variants={list(variants)}: expected a non-empty selection of {VARIANTS}")
    anns: dict[str, Compressed] = {}
    for variant, weight in (("attention-guided", attention_weight), ("sparse, no attention", 0.0)):
        if variant in variants:
            anns[variant] = compress(meta, data, "attention", ann_cfg, sparsity=sparsity, keep=keep,
                                     granularity=granularity, attention_weight=weight)
    if "magnitude" in variants:
        reference = next(iter(anns.values()), None)
        density = (1.0 - sparsity if sparsity is not None else keep) if reference is None else \
            count_nonzero(reference.model, weights_only=True) / count_nonzero(meta, weights_only=True)
        anns["magnitude"] = compress(meta, data, "prune", ann_cfg, sparsity=1.0 - density)
    out = {}
    for v in variants:
        snn = compress(anns[v].model, data, "convert", snn_cfg, percentile=percentile,
                       surrogate_scale=surrogate_scale, evaluate=evaluate)
        snn.info["ann"] = anns[v]
        out[v] = snn
    return out
