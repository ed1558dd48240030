"""The five papers' methods, run the same way from one pretrained SNN, and one row of numbers each.

A comparison is fair only when every method starts from the same network, sees the same
data and gets the same training budget. :class:`Base` holds that starting point (a dense
SNN converted from its ANN twin and fine-tuned, plus the twin), :class:`Settings` the
budget and each method's operating point, and :data:`METHODS` one function per method::

    base = Base(snn=hybrid.snn, ann=hybrid.ann, data=ds, cfg=TrainConfig(T=6, epochs=4), ann_cfg=ann_cfg)
    settings = Settings(epochs=4, ann_epochs=15, sparsity=0.9, bits=2)
    runs = {name: METHODS.get(name)(base, settings) for name in METHODS.names()}
    rows = {name: method_row(run, base) for name, run in runs.items()}

Every method gets ``settings.epochs`` epochs of SNN training at its T (``cfg`` gives the
learning rate, batch size and seed), split between its phases where it has several:

* ``"dense"``: the reference, the base fine-tuned for the same epochs, nothing removed.
* ``"pca"`` (Chowdhury et al. 2021): the widths the PCA of each layer's membrane potential
  asks for at ``pca_threshold`` of the variance; the base is cut to them for real
  (:func:`~snnkit.compress.surgery.shrink`). PCA gives widths, not channels: the paper
  retrains the narrower net from scratch. Here, to keep the base as starting point, each
  layer keeps its filters of largest L1 norm, then the smaller net is fine-tuned.
* ``"attention"`` (Kundu et al. 2021): a sparse ANN student trained from scratch for
  ``ann_epochs`` at a fixed global density ``1 - sparsity``, guided by the attention maps
  of the base's ANN twin (the meta-model), converted and fine-tuned as an SNN with
  learned thresholds and leaks (:func:`~snnkit.compress.sparse.attention_guided`,
  :func:`~snnkit.compress.sparse.spiking_stage`). The only method whose weights do not
  start from the base: the paper trains its student from scratch.
* ``"duq"`` (Schaefer et al. 2023): one-shot global magnitude pruning to ``sparsity`` and
  the learned-scale DuQ quantizer at ``bits`` (2: ternary) on every layer, both from the
  first epoch (the "joint" schedule, :func:`~snnkit.compress.schedules.run_compression`).
* ``"rescaw-svs"`` (Wei et al. 2025): quantization-aware training with ReScaW at ``bits``
  (first and last layer in full precision, as in the paper) for the first half of the
  epochs, then the channels of lowest SVS score removed (``svs_keep`` of each layer
  kept) and the smaller quantized net fine-tuned for the other half
  (:func:`~snnkit.compress.quant_prune.quantize_prune`).
* ``"lamp-kl"`` (Gou et al. 2025): the KL rule chooses T on the base's outputs over the
  training set (:func:`~snnkit.compress.temporal.kl_by_timesteps`,
  :func:`~snnkit.compress.temporal.choose_timesteps`), then ``lamp_rounds`` rounds of LAMP
  pruning reach ``sparsity``, each rewound to the base and retrained at the chosen T
  (:func:`~snnkit.compress.iterative.iterative_prune`).
* ``"random"``: the structured baseline, as many channels as PCA keeps, drawn at random
  over all layers (:func:`~snnkit.compress.criteria.random_criterion`), cut and fine-tuned.
* ``"uniform"``: the quantization baseline, the symmetric uniform quantizer at ``bits`` on
  every layer, trained for the epochs (quantization-aware fine-tuning).

:func:`method_row` measures a compressed network the same way for every method: test
accuracy at its T, compression in weights, spikes, compute energy (45 nm, effective counts)
and memory-inclusive energy and stored size (:mod:`snnkit.metrics.hardware`, in the
cheapest storage format). The hardware model prices accumulate-only layers, so the
network input must be spikes or event counts (binary images fed directly qualify).
"""
from __future__ import annotations

import copy
import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..encoding import model_input
from ..metrics.energy import energy, energy_per_op
from ..metrics import hardware
from ..metrics.ops import measure
from ..models import Net
from ..registry import Registry
from ..train import TrainConfig, evaluate, fit
from .criteria import CRITERIA, Selection, with_keep
from .iterative import iterative_prune
from .quant import quant_records, quantize_model
from .quant_prune import quantize_prune
from .schedules import run_compression
from .sparse import SparseConfig, attention_guided, nonzero_weights, spiking_stage
from .surgery import shrink
from .temporal import choose_timesteps, kl_by_timesteps

__all__ = ["Base", "Compressed", "METHODS", "MAC16_PJ", "Settings", "method_row", "pca_selection", "run_methods"]

#: Energy of one 16-bit MAC in pJ (Horowitz 2014, 45 nm, fp16: the table of
#: :mod:`snnkit.metrics.energy`): the unit of :mod:`snnkit.metrics.hardware`'s normalized
#: energies, which turns them into picojoules.
MAC16_PJ: float = energy_per_op("fp16")[0]


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}={value!r}: expected an integer >= {low}")
    return int(value)


def _check_fraction(name: str, value: object, *, low_open: bool = True, high_open: bool = True) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name}={value!r}: expected a number in {lo}0, 1{hi}")
    return float(value)


@dataclass(frozen=True)
class Settings:
    """The training budget every method gets, and each method's operating point.

    Attributes:
        epochs: SNN training epochs of every method (split over phases where a method has
            several), an integer >= 1.
        ann_epochs: epochs of the attention-guided student ANN, trained from scratch.
        sparsity: fraction of the weights removed by the unstructured methods
            (attention-guided, DuQ's magnitude mask, LAMP), in (0, 1).
        bits: weight bit-width of the quantizers (DuQ, ReScaW, uniform); 2 is ternary
            for DuQ and uniform, four levels for ReScaW.
        pca_threshold: variance the PCA widths explain, in (0, 1].
        pca_samples: training images whose membrane potentials the PCA sees.
        svs_keep: fraction of each layer's channels SVS keeps, in (0, 1].
        kl_threshold: normalised KL the chosen t must get below, in (0, 1).
        lamp_rounds: LAMP pruning rounds; must divide ``epochs``.
        attention_weight: beta of the attention-transfer loss, >= 0.
        percentile: of the ReLU pre-activations setting the attention student's thresholds.
        seed: seeds masks, random channels and initial student weights.
    """

    epochs: int
    ann_epochs: int
    sparsity: float = 0.9
    bits: int = 2
    pca_threshold: float = 0.99
    pca_samples: int = 512
    svs_keep: float = 0.5
    kl_threshold: float = 0.01
    lamp_rounds: int = 2
    attention_weight: float = 0.5
    percentile: float = 99.7
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1)
        _check_int("ann_epochs", self.ann_epochs, 1)
        _check_fraction("sparsity", self.sparsity)
        _check_int("bits", self.bits, 2)
        _check_fraction("pca_threshold", self.pca_threshold, high_open=False)
        _check_int("pca_samples", self.pca_samples, 2)
        _check_fraction("svs_keep", self.svs_keep, high_open=False)
        _check_fraction("kl_threshold", self.kl_threshold)
        _check_int("lamp_rounds", self.lamp_rounds, 1)
        _check_int("seed", self.seed, 0)
        if self.epochs % self.lamp_rounds:
            raise ValueError(f"lamp_rounds={self.lamp_rounds!r}: expected a divisor of epochs={self.epochs} "
                             "(every LAMP round retrains the same number of epochs)")
        if not (isinstance(self.attention_weight, numbers.Real) and self.attention_weight >= 0):
            raise ValueError(f"attention_weight={self.attention_weight!r}: expected a number >= 0")
        if not (isinstance(self.percentile, numbers.Real) and 0 < self.percentile <= 100):
            raise ValueError(f"percentile={self.percentile!r}: expected a number in (0, 100]")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


@dataclass
class Base:
    """The common starting point.

    Attributes:
        snn: the dense, trained SNN every method starts from (never modified).
        ann: its ANN twin (the attention-guided method's meta-model).
        data: a :class:`~snnkit.data.Dataset` (train, val, test splits).
        cfg: SNN training settings: ``T`` (the base's time steps), ``lr``, ``batch_size``,
            ``encoding``, ``seed``, ``device``; ``epochs`` is replaced per method.
        ann_cfg: ANN training settings of the attention student (``epochs`` replaced).
    """

    snn: Net
    ann: Net
    data: Any
    cfg: TrainConfig
    ann_cfg: TrainConfig

    @property
    def T(self) -> int:
        return self.cfg.T


@dataclass
class Compressed:
    """One method's result.

    Attributes:
        method: its name in :data:`METHODS`.
        model: the compressed, trained SNN (masks and quantizers attached).
        T: the time steps it runs at.
        info: what the method chose, e.g. ``{"widths": [...]}`` (structured methods) or
            ``{"kl_normalised": [...], "sparsity": 0.8}`` (``"lamp-kl"``).
    """

    method: str
    model: nn.Module
    T: int
    info: dict[str, Any] = field(default_factory=dict)


#: ``fn(base, settings) -> Compressed`` by name.
METHODS: Registry[Callable[[Base, Settings], Compressed]] = Registry("compression method")


def _train(model: nn.Module, base: Base, epochs: int) -> nn.Module:
    """Train ``model`` in place at the base's T for ``epochs`` epochs; returns it."""
    if epochs:
        fit(model, base.data, base.cfg.replace(epochs=epochs), val=None)
    return model


def pca_selection(base: Base, settings: Settings) -> Selection:
    """The PCA widths of the base SNN (:func:`~snnkit.compress.criteria.pca_criterion` on
    ``pca_samples`` training images at the base's T)."""
    x = base.data.train.x[: settings.pca_samples]
    return CRITERIA.get("pca")(base.snn, x, T=base.T, encoding=base.cfg.encoding,
                               threshold=settings.pca_threshold, seed=settings.seed)


@METHODS.register("dense")
def dense(base: Base, settings: Settings) -> Compressed:
    """The base fine-tuned for ``epochs`` more epochs, nothing removed (the reference)."""
    return Compressed("dense", _train(copy.deepcopy(base.snn), base, settings.epochs), base.T)


@METHODS.register("pca")
def pca(base: Base, settings: Settings) -> Compressed:
    """PCA widths, the largest-L1 filters of each layer kept, cut for real, fine-tuned."""
    sel = pca_selection(base, settings)
    keep = [w / c for w, c in zip(sel.widths, sel.original)]
    channels = with_keep(CRITERIA.get("l1")(base.snn, keep=1.0), keep)
    model = _train(shrink(base.snn, channels), base, settings.epochs)
    return Compressed("pca", model, base.T, {"widths": list(sel.widths), "original": list(sel.original)})


@METHODS.register("random")
def random_channels(base: Base, settings: Settings) -> Compressed:
    """As many channels as PCA keeps, drawn at random over all layers, cut, fine-tuned."""
    total = sum(pca_selection(base, settings).widths)
    sel = CRITERIA.get("random")(base.snn, total=total, seed=settings.seed)
    model = _train(shrink(base.snn, sel), base, settings.epochs)
    return Compressed("random", model, base.T, {"widths": list(sel.widths), "original": list(sel.original)})


@METHODS.register("attention")
def attention(base: Base, settings: Settings) -> Compressed:
    """A sparse student ANN guided by the base ANN's attention, converted, fine-tuned as an SNN."""
    spec = base.ann.spec
    learned = dataclasses.replace(spec, neuron=dataclasses.replace(spec.neuron, learn_beta=True,
                                                                   learn_threshold=True))
    meta = copy.deepcopy(base.ann)
    meta.spec = learned  # the student and its SNN learn thresholds and leaks; the ANN is unchanged
    sparse = SparseConfig(density=1.0 - settings.sparsity, granularity="irregular", seed=settings.seed)
    student, _ = attention_guided(meta, base.data, base.ann_cfg.replace(epochs=settings.ann_epochs), sparse,
                                  settings.attention_weight, seed=settings.seed)
    hybrid = spiking_stage(student, base.data, base.cfg.replace(epochs=settings.epochs),
                           percentile=settings.percentile)
    return Compressed("attention", hybrid.snn, base.T, {"ann_accuracy": hybrid.ann_accuracy,
                                                       "converted_accuracy": hybrid.converted_accuracy})


@METHODS.register("duq")
def duq(base: Base, settings: Settings) -> Compressed:
    """Global magnitude mask and DuQ at ``bits`` on every layer, jointly from the first epoch."""
    run = run_compression(base.snn, base.data, base.cfg.replace(epochs=settings.epochs), "joint",
                          sparsity=settings.sparsity, bits=settings.bits, quantizer="duq", val=None)
    return Compressed("duq", run.model, base.T)


@METHODS.register("rescaw-svs")
def rescaw_svs(base: Base, settings: Settings) -> Compressed:
    """ReScaW quantization-aware training, SVS channel pruning, fine-tuning (half the epochs each)."""
    train_epochs = settings.epochs - settings.epochs // 2
    run = quantize_prune(base.snn, base.data, base.cfg, order="quantize-then-prune", criterion="svs",
                         keep=settings.svs_keep, score_x=base.data.train.x[: settings.pca_samples],
                         bits=settings.bits, quantizer="rescaw", epochs=train_epochs,
                         finetune_epochs=settings.epochs // 2)
    return Compressed("rescaw-svs", run.model, base.T, {"widths": list(run.model.spec.widths)})


@METHODS.register("lamp-kl")
def lamp_kl(base: Base, settings: Settings) -> Compressed:
    """T from the KL rule on the base, then LAMP rounds rewound to the base and retrained at that T."""
    kl = kl_by_timesteps(base.snn, base.data.train, base.T, base.cfg)
    choice = choose_timesteps(kl, settings.kl_threshold)
    model = copy.deepcopy(base.snn)
    amount = 1.0 - (1.0 - settings.sparsity) ** (1.0 / settings.lamp_rounds)
    rounds = iterative_prune(model, base.data, method="lamp", amount=amount, rounds=settings.lamp_rounds,
                             rewind_state=copy.deepcopy(base.snn.state_dict()),
                             epochs=settings.epochs // settings.lamp_rounds, cfg=base.cfg.replace(T=choice.T),
                             val=None, test=None)
    return Compressed("lamp-kl", model, choice.T, {"kl_normalised": [float(v) for v in choice.normalised],
                                                   "sparsity": rounds[-1].sparsity})


@METHODS.register("uniform")
def uniform(base: Base, settings: Settings) -> Compressed:
    """The uniform symmetric quantizer at ``bits`` on every layer, quantization-aware fine-tuning."""
    model, _ = quantize_model(base.snn, settings.bits, quantizer="uniform")
    return Compressed("uniform", _train(model, base, settings.epochs), base.T)


def run_methods(base: Base, settings: Settings, names: Sequence[str] | None = None) -> dict[str, Compressed]:
    """``{name: Compressed}`` for ``names`` (default: every method in :data:`METHODS`), in that order."""
    names = list(METHODS.names()) if names is None else list(names)
    for n in names:
        METHODS.get(n)  # an unknown name fails before any training
    return {n: METHODS.get(n)(base, settings) for n in names}


def method_row(run: Compressed, base: Base, x: torch.Tensor | None = None, *,
               storage_formats: Sequence[str] | None = None) -> dict[str, Any]:
    """The numbers of one compressed SNN, measured as for every other method.

    Args:
        run: a method's result.
        base: the common starting point (its test split, its dense weight count, ``cfg``).
        x: test images the activity is measured on (default: the whole test split).
        storage_formats: formats the memory model may store the weights in (default all of
            :data:`snnkit.metrics.hardware.STORAGE_FORMATS`); the cheapest in energy is used.

    Returns:
        ``accuracy`` (test, fraction), ``compression`` (the base's non-zero Conv/Linear
        weights over the model's; a weight quantized to zero counts as removed), ``T``,
        ``spikes_per_inference`` (per image over the T steps), ``energy_compute_uj``
        (45 nm, fp32 operations, effective counts: zero weights and zero inputs skipped),
        ``energy_memory_uj`` (accelerator model: DRAM, global buffer, scratchpads and
        accumulates at the mean spike density, normalized units times :data:`MAC16_PJ`),
        ``size_bits`` (stored weights, values and index, in ``storage_format``),
        ``storage_format``, ``weight_bits`` (bit-width of the quantized layers, 32 when
        none is), ``full_precision_layers`` (Conv/Linear layers left at 32 bits) and
        ``nonzero_weights``.
    """
    cfg = base.cfg.replace(T=run.T)
    x = base.data.test.x if x is None else x
    inp = model_input(x.to(cfg.device), run.T, cfg.encoding)
    report = measure(run.model, inp)
    layer_bits = {name: rec.bits for name, rec in quant_records(run.model).items()}
    loads = hardware.profile(run.model, inp, layer_bits)
    formats = list(hardware.STORAGE_FORMATS.names()) if storage_formats is None else list(storage_formats)
    priced = {f: hardware.inference_energy(loads, f, "mean") for f in formats}
    best = min(formats, key=lambda f: priced[f].total)
    n_layers = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in run.model.modules())
    return {
        "accuracy": evaluate(run.model, base.data.test, cfg),
        "compression": nonzero_weights(base.snn) / max(1, nonzero_weights(run.model)),
        "T": run.T,
        "spikes_per_inference": report.spikes_per_inference,
        "energy_compute_uj": energy(report, "fp32", "effective")["total_uj"],
        "energy_memory_uj": priced[best].total * MAC16_PJ * 1e-6,
        "size_bits": priced[best].storage_bits,
        "storage_format": best,
        "weight_bits": max(layer_bits.values(), default=32),
        "full_precision_layers": n_layers - len(layer_bits),
        "nonzero_weights": nonzero_weights(run.model),
    }
