"""The five papers' methods side by side: one pretrained SNN, one budget, one row of numbers each.

A comparison is fair only when every method starts from the same network, sees the same
data and gets the same training budget. :class:`Base` holds that starting point (a dense
SNN converted from its ANN twin and fine-tuned, plus the twin), :class:`Settings` the
budget and each method's operating point, and :data:`COMPARED` the entries, each run
through :func:`snnkit.compress.compress` (:func:`run_entry`)::

    base = Base(snn=hybrid.snn, ann=hybrid.ann, data=ds, cfg=TrainConfig(T=6, epochs=4), ann_cfg=ann_cfg)
    settings = Settings(epochs=4, ann_epochs=15, sparsity=0.9, bits=2)
    result = compare({0: base}, settings)              # every entry, every seed
    result.rows["duq"][0]                              # method_row of seed 0: accuracy, energy, size, ...

Every entry gets ``settings.epochs`` epochs of SNN training at its T (``cfg`` gives the
learning rate, batch size and seed), split between its phases where it has several:

* ``"dense"``: the reference, the base fine-tuned for the same epochs, nothing removed.
* ``"pca"`` (Chowdhury et al. 2021): the ``"pca"`` method: the widths the PCA of each layer's
  membrane potential asks for at ``pca_threshold`` of the variance, each layer keeping its
  filters of largest L1 norm, cut for real and fine-tuned (the paper retrains the narrower
  net from scratch; here the base stays the starting point).
* ``"attention"`` (Kundu et al. 2021): the ``"attention"`` method, a sparse ANN student
  trained from scratch for ``ann_epochs`` at ``sparsity``, guided by the attention maps of
  the base's ANN twin (the meta-model), then ``"convert"`` with learned thresholds and
  leaks. The only entry whose weights do not start from the base.
* ``"duq"`` (Schaefer et al. 2023): the ``"duq"`` method, one-shot global magnitude pruning
  to ``sparsity`` (per layer with ``duq_planner="layer"``) and DuQ at ``bits`` (2: ternary) on
  every layer, both from the first epoch.
* ``"rescaw-svs"`` (Wei et al. 2025): the ``"quantize-prune"`` method, ReScaW at ``bits``
  (first and last layer in full precision) trained for the first half of the epochs, the
  channels of lowest SVS score removed (``svs_keep`` of each layer kept), the smaller
  quantized net fine-tuned for the other half.
* ``"lamp-kl"`` (Gou et al. 2025): the ``"iterative"`` method with the KL rule choosing T on
  the base (``kl_threshold``), then ``lamp_rounds`` rounds of LAMP pruning to ``sparsity``,
  each rewound to the base and retrained at the chosen T.
* ``"random"``: the structured baseline, the ``"random"`` method with as many channels as
  PCA keeps, drawn over all layers, cut and fine-tuned.
* ``"uniform"``: the quantization baseline, the ``"quantize"`` method with the symmetric
  uniform quantizer at ``bits`` on every layer, trained for the epochs.

:func:`method_row` measures a compressed network the same way for every entry: test
accuracy at its T, compression in weights, spikes, compute energy (45 nm, effective counts)
and memory-inclusive energy and stored size (:mod:`snnkit.metrics.hardware`, in the
cheapest storage format). The hardware model prices accumulate-only layers, so the
network input must be spikes or event counts (binary images fed directly qualify).
"""
from __future__ import annotations

import copy
import dataclasses
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from .. import progress
from ..encoding import model_input
from ..metrics import hardware
from ..metrics.energy import energy, energy_per_op
from ..metrics.ops import measure
from ..models import Net
from ..train import TrainConfig, evaluate
from ..weights import count_nonzero, quant_records, weight_layers
from .core import Compressed, compress
from .importance import Inputs, score
from .planners import plan

__all__ = ["Base", "COMPARED", "Comparison", "DUQ_PLANNERS", "MAC16_PJ", "PAPER_DEFAULTS", "Settings", "compare",
           "compare_at_paper_defaults", "method_row", "pca_widths", "run_entry"]

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


#: The planners :attr:`Settings.duq_planner` accepts.
DUQ_PLANNERS = ("global", "layer")


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
        duq_planner: how DuQ's one-shot magnitude mask is cut: ``"global"`` (one threshold
            over all layers, as paper 3 prunes) or ``"layer"`` (every layer to ``sparsity``);
            a global cut can empty a layer whose weights are all small (the wide convs of a
            VGG9), to which no quantizer can be fitted.
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
    duq_planner: str = "global"
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
        if self.duq_planner not in DUQ_PLANNERS:
            raise ValueError(f"duq_planner={self.duq_planner!r}: expected one of {', '.join(map(repr, DUQ_PLANNERS))}")
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


#: The entries of the comparison, in the order tables and figures show them.
COMPARED = ("dense", "pca", "random", "attention", "duq", "rescaw-svs", "lamp-kl", "uniform")


def pca_widths(base: Base, settings: Settings) -> list[int]:
    """The PCA widths of the base SNN at ``pca_threshold``, over ``pca_samples`` training
    images at the base's T (the ``"pca-variance"`` importance and ``"variance"`` planner)."""
    inputs = Inputs(base.data.train.x[: settings.pca_samples], T=base.T, encoding=base.cfg.encoding,
                    seed=settings.seed)
    return plan(score(base.snn, "pca-variance", inputs), "variance", threshold=settings.pca_threshold).widths


def _chain(name: str, first: Compressed, second: Compressed) -> Compressed:
    """One :class:`Compressed` for an entry that runs two methods in turn (the ANN, then the SNN)."""
    return Compressed(second.model, name, second.T, first.history + second.history,
                      {**first.info, **second.info}, first.seconds + second.seconds)


def run_entry(name: str, base: Base, settings: Settings) -> Compressed:
    """One entry of :data:`COMPARED` from ``base`` with ``settings``, through
    :func:`~snnkit.compress.compress` (the base is never modified)."""
    cfg = base.cfg.replace(epochs=settings.epochs)
    data = base.data
    if name == "dense":
        return compress(base.snn, data, "dense", cfg)
    if name == "pca":
        return compress(base.snn, data, "pca", cfg, threshold=settings.pca_threshold, importance="l1",
                        samples=settings.pca_samples)
    if name == "random":
        return compress(base.snn, data, "random", cfg, channels=sum(pca_widths(base, settings)),
                        seed=settings.seed)
    if name == "attention":
        spec = base.ann.spec
        meta = copy.deepcopy(base.ann)  # the student and its SNN learn thresholds and leaks
        meta.spec = dataclasses.replace(spec, neuron=dataclasses.replace(spec.neuron, learn_beta=True,
                                                                         learn_threshold=True))
        student = compress(meta, data, "attention", base.ann_cfg.replace(epochs=settings.ann_epochs),
                           sparsity=settings.sparsity, attention_weight=settings.attention_weight)
        snn = compress(student.model, data, "convert", cfg, percentile=settings.percentile, surrogate_scale=0.3)
        return _chain("attention", student, snn)
    if name == "duq":
        return compress(base.snn, data, "duq", cfg, schedule="joint", sparsity=settings.sparsity, bits=settings.bits,
                        planner=settings.duq_planner)
    if name == "rescaw-svs":
        return compress(base.snn, data, "quantize-prune", cfg, order="quantize-then-prune", importance="svs",
                        keep=settings.svs_keep, samples=settings.pca_samples, bits=settings.bits,
                        quantizer="rescaw", finetune_epochs=settings.epochs // 2)
    if name == "lamp-kl":
        return compress(base.snn, data, "iterative", cfg, importance="lamp", planner="global",
                        sparsity=settings.sparsity, rounds=settings.lamp_rounds, kl_threshold=settings.kl_threshold)
    if name == "uniform":
        return compress(base.snn, data, "quantize", cfg, bits=settings.bits, quantizer="uniform")
    raise ValueError(f"unknown comparison entry {name!r}; expected one of: {', '.join(COMPARED)}")


@dataclass
class Comparison:
    """What :func:`compare` measured, per entry and seed (in the order of the seeds).

    Attributes:
        rows: ``{entry: [method_row of each seed]}``.
        runs: ``{entry: [Compressed of each seed]}``.
        seconds: ``{entry: wall time over all seeds}``.
    """

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: dict[str, list[Compressed]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def values(self, entry: str, metric: str) -> list[float]:
        """One metric of one entry, per seed."""
        return [row[metric] for row in self.rows[entry]]


def compare(bases: Mapping[int, Base], settings: Settings, names: Sequence[str] = COMPARED) -> Comparison:
    """Every entry of ``names`` from every base (``{seed: Base}``), measured by :func:`method_row`.

    ``settings.seed`` is replaced by each base's seed. Unknown names fail before any training.
    One progress bar runs over the entries and seeds (:mod:`snnkit.progress`).
    """
    names = list(names)
    unknown = [n for n in names if n not in COMPARED]
    if unknown:
        raise ValueError(f"unknown comparison entries {unknown}; expected some of: {', '.join(COMPARED)}")
    out = Comparison({n: [] for n in names}, {n: [] for n in names}, dict.fromkeys(names, 0.0))
    pairs = [(seed, name) for seed in bases for name in names]
    for seed, name in progress.over(pairs, desc="methods x seeds", names=("seed", "method")):
        t0 = time.perf_counter()
        run = run_entry(name, bases[seed], settings.replace(seed=seed))
        out.rows[name].append(method_row(run, bases[seed]))
        out.runs[name].append(run)
        out.seconds[name] += time.perf_counter() - t0
    return out


def method_row(run: Compressed, base: Base, x: torch.Tensor | None = None, *,
               storage_formats: Sequence[str] | None = None) -> dict[str, Any]:
    """The numbers of one compressed SNN, measured as for every other entry.

    Args:
        run: an entry's result (a :class:`~snnkit.compress.core.Compressed`).
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
    n_layers = len(weight_layers(run.model))
    return {
        "accuracy": evaluate(run.model, base.data.test, cfg),
        "compression": count_nonzero(base.snn, weights_only=True) / max(1, count_nonzero(run.model, weights_only=True)),
        "T": run.T,
        "spikes_per_inference": report.spikes_per_inference,
        "energy_compute_uj": energy(report, "fp32", "effective")["total_uj"],
        "energy_memory_uj": priced[best].total * MAC16_PJ * 1e-6,
        "size_bits": priced[best].storage_bits,
        "storage_format": best,
        "weight_bits": max(layer_bits.values(), default=32),
        "full_precision_layers": n_layers - len(layer_bits),
        "nonzero_weights": count_nonzero(run.model, weights_only=True),
    }


#: Each entry's operating point in its own paper, where it differs from a comparison's shared
#: one: PCA at 99.9 % of the variance (paper 1), attention-guided at 97 % sparsity (paper 2's
#: up to 33x), LAMP at 98 % (paper 5: 15 rounds of 25 % remove 98.2 %). DuQ's ternary, 80 %
#: pruned point is the shared one; QP-SNN reports 8, 4 and 2 bits alike.
PAPER_DEFAULTS: dict[str, dict[str, Any]] = {"pca": {"pca_threshold": 0.999}, "attention": {"sparsity": 0.97},
                                             "lamp-kl": {"sparsity": 0.98}}


def compare_at_paper_defaults(bases: Mapping[int, Base], settings: Settings,
                              names: Sequence[str] = tuple(PAPER_DEFAULTS)) -> Comparison:
    """Each entry of ``names`` at its paper's own operating point (:data:`PAPER_DEFAULTS`
    over ``settings``: the same budget), from every base, as :func:`compare` measures it.

    Raises:
        ValueError: a name without paper defaults.
    """
    unknown = [n for n in names if n not in PAPER_DEFAULTS]
    if unknown:
        raise ValueError(f"entries {unknown} have no paper defaults; expected some of: {', '.join(PAPER_DEFAULTS)}")
    out = Comparison()
    for name in names:
        part = compare(bases, settings.replace(**PAPER_DEFAULTS[name]), [name])
        out.rows.update(part.rows)
        out.runs.update(part.runs)
        out.seconds.update(part.seconds)
    return out
