"""Schedules: how a quantity moves from a start value to an end value over a few steps.

Gradual compression changes one thing step by step: the number of time steps T
(temporal pruning, 25 -> 15 -> 10 -> 5), the fraction of weights removed (iterative
pruning, 0 -> 0.5 -> 0.75 -> 0.875), the bit-width. A schedule is a pure function::

    schedule(start, end, steps) -> [start, ..., end]      # steps + 1 values

    SCHEDULES.get("geometric")(25, 5, 3)            # [25.0, 14.62, 8.55, 5.0]
    [round(t) for t in SCHEDULES.get("linear")(25, 5, 4)]     # [25, 20, 15, 10, 5]

Registered (:data:`SCHEDULES`):

* ``"linear"``: equal differences.
* ``"geometric"``: equal ratios (``start`` and ``end`` > 0). For a density (1 - sparsity)
  this is "remove the same fraction of the remaining weights every round", the rule of
  iterative magnitude pruning; see :func:`iterative_sparsity`.

*Compression schedules* (:data:`COMPRESSION_SCHEDULES`, below) say something else: during
which epochs of a fine-tuning run pruning and quantization are switched on ("isolated",
"cumulative", "joint"; Schaefer et al. 2023). The ``"duq"`` method of
:func:`snnkit.compress.compress` runs them, and so do ``"prune"`` (one-shot pruning, then
fine-tuning) and ``"quantize"`` (a quantizer on every layer, then fine-tuning or none):
one fine-tuning loop for all three::

    compress(snn, data, "duq", cfg, schedule="cumulative", sparsity=0.8, bits=2)
    compress(snn, data, "prune", cfg, sparsity=0.9, importance="lamp")
    compress(snn, data, "quantize", cfg.replace(epochs=0), bits=5)      # post-training
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import nn

from ..registry import Registry
from ..train import TrainConfig
from ..weights import Skip, masks_of
from .core import METHODS, Compressed, Run
from .importance import make_importance
from .masks import prunable_weights
from .planners import make_planner
from .quant import quantize_model

__all__ = [
    "COMPRESSION_SCHEDULES", "Phase", "SCHEDULES", "Schedule", "cumulative", "geometric", "isolated",
    "iterative_sparsity", "joint", "linear",
]

#: ``fn(start, end, steps) -> list of steps + 1 floats, from start to end``.
Schedule = Callable[[float, float, int], list[float]]

SCHEDULES: Registry[Schedule] = Registry("schedule")


def _check(start: float, end: float, steps: int) -> None:
    for name, v in (("start", start), ("end", end)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{name}={v!r}: expected a finite number")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps={steps!r}: expected an integer >= 1")


@SCHEDULES.register("linear")
def linear(start: float, end: float, steps: int) -> list[float]:
    """``steps + 1`` values from ``start`` to ``end`` with equal differences."""
    _check(start, end, steps)
    return [start + (end - start) * i / steps for i in range(steps)] + [float(end)]


@SCHEDULES.register("geometric")
def geometric(start: float, end: float, steps: int) -> list[float]:
    """``steps + 1`` values from ``start`` to ``end`` with equal ratios (both > 0)."""
    _check(start, end, steps)
    if start <= 0 or end <= 0:
        raise ValueError(f"start={start!r}, end={end!r}: a geometric schedule needs both > 0")
    ratio = (end / start) ** (1.0 / steps)
    return [start * ratio**i for i in range(steps)] + [float(end)]


def iterative_sparsity(per_round: float, rounds: int) -> list[float]:
    """Sparsity after each of ``rounds`` rounds that each remove ``per_round`` of the
    remaining weights: ``1 - (1 - per_round)^r`` for r = 1..rounds.

    ``iterative_sparsity(0.5, 3) == [0.5, 0.75, 0.875]``.
    """
    if isinstance(per_round, bool) or not isinstance(per_round, numbers.Real) or not 0 < per_round < 1:
        raise ValueError(f"per_round={per_round!r}: expected a fraction in (0, 1)")
    density = geometric(1.0, (1.0 - per_round) ** rounds, rounds)[1:]
    return [1.0 - d for d in density]


# ---------------------------------------------------------------------------------------
# Compression schedules: when pruning and quantization are on during fine-tuning.
#
# Schaefer et al. (2023) fine-tune a pretrained SNN with one-shot magnitude pruning and
# learned-scale quantization, and compare three orders:
#
# * "isolated": one method alone (quantization alone, or pruning alone), from the start;
# * "cumulative": prune first, switch quantization on half-way (at epoch epochs // 2);
# * "joint": both from the start.
#
# A compression schedule is a pure function ``fn(epochs, *, prune, quantize) -> [Phase]``:
# the stretches of fine-tuning with fixed settings, in order, whose epochs add up to
# ``epochs``. The ``"duq"``, ``"prune"`` and ``"quantize"`` methods (below) train through them.


@dataclass(frozen=True)
class Phase:
    """A stretch of fine-tuning: ``epochs`` epochs with pruning and quantization on or off."""

    epochs: int
    prune: bool
    quantize: bool


#: ``fn(epochs, *, prune, quantize) -> list[Phase]`` by name: "isolated", "cumulative", "joint".
COMPRESSION_SCHEDULES: Registry[Callable[..., list[Phase]]] = Registry("compression schedule")


def _check_epochs(epochs: object) -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs={epochs!r}: expected an integer >= 1")
    return int(epochs)


@COMPRESSION_SCHEDULES.register("isolated")
def isolated(epochs: int, *, prune: bool, quantize: bool) -> list[Phase]:
    """One method alone, from the first epoch: ``[Phase(epochs, prune, quantize)]``.

    Raises:
        ValueError: both or neither method asked for (name the one to isolate).
    """
    epochs = _check_epochs(epochs)
    if bool(prune) == bool(quantize):
        raise ValueError(f"prune={prune!r}, quantize={quantize!r}: 'isolated' applies exactly one method; "
                         "expected one of them True (use 'cumulative' or 'joint' for both)")
    return [Phase(epochs, bool(prune), bool(quantize))]


@COMPRESSION_SCHEDULES.register("cumulative")
def cumulative(epochs: int, *, prune: bool = True, quantize: bool = True) -> list[Phase]:
    """Prune from the first epoch, quantize too from epoch ``epochs // 2``.

    ``cumulative(6) == [Phase(3, True, False), Phase(3, True, True)]``; with one epoch there
    is no first half and it is the same as ``joint``.

    Raises:
        ValueError: unless both methods are asked for.
    """
    epochs = _check_epochs(epochs)
    if not (prune and quantize):
        raise ValueError(f"prune={prune!r}, quantize={quantize!r}: 'cumulative' needs both True "
                         "(use 'isolated' for one method)")
    half = epochs // 2
    return ([Phase(half, True, False)] if half else []) + [Phase(epochs - half, True, True)]


@COMPRESSION_SCHEDULES.register("joint")
def joint(epochs: int, *, prune: bool = True, quantize: bool = True) -> list[Phase]:
    """Every method asked for, from the first epoch: ``[Phase(epochs, prune, quantize)]``."""
    epochs = _check_epochs(epochs)
    return [Phase(epochs, bool(prune), bool(quantize))]


def _check_sparsity(sparsity: object) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real) or not 0 <= sparsity < 1:
        raise ValueError(f"sparsity={sparsity!r}: expected a fraction in [0, 1) of the weights removed")
    return float(sparsity)


def _phased(model: nn.Module, cfg: TrainConfig, run: Run, *, schedule: str, sparsity: float, bits: int | None,
            quantizer: str, options: Mapping[str, Any] | None, per_channel: bool, skip: Skip,
            importance: str, planner: str) -> Compressed:
    """The fine-tuning loop of ``"duq"``, ``"prune"`` and ``"quantize"`` (see :func:`duq`)."""
    fn = COMPRESSION_SCHEDULES.get(schedule)
    sparsity = _check_sparsity(sparsity)
    phases = fn(cfg.epochs, prune=sparsity > 0, quantize=bits is not None) if cfg.epochs else \
        [Phase(0, sparsity > 0, bits is not None)]
    info: dict[str, Any] = {"phases": phases}
    pruned = quantized = False
    for i, phase in enumerate(phases):
        if phase.prune and not pruned:
            names = prunable_weights(model, skip=skip)
            imp = make_importance(importance, **({"seed": cfg.seed} if importance == "random" else {}))
            make_planner(planner, sparsity=sparsity).mask(model, imp(model, level="weight"), names)
            info["empty_layers"] = [n for n, m in masks_of(model).items() if n in names and not bool(m.any())]
            if bits is not None and info["empty_layers"]:
                raise ValueError(f"sparsity={sparsity:g} removes every weight of {info['empty_layers']}, and a "
                                 f"quantizer cannot be fitted to a layer with no weight; lower the sparsity, "
                                 f"skip those layers, or use planner='layer' (the same sparsity in every layer)")
            pruned = True
        if phase.quantize and not quantized:
            model, info["quantization_error"] = quantize_model(model, bits, per_channel=per_channel, skip=skip,
                                                               quantizer=quantizer, options=options)
            quantized = True
        run.train(model, cfg.replace(epochs=phase.epochs, seed=cfg.seed + i), f"phase {i + 1}")
    return run.result(model, cfg.T, info)


@METHODS.register("duq")
def duq(model: nn.Module, data, cfg: TrainConfig, run: Run, *, schedule: str = "joint", sparsity: float = 0.0,
        bits: int | None = 2, quantizer: str = "duq", options: Mapping[str, Any] | None = None,
        skip: Skip = None, importance: str = "magnitude", planner: str = "global") -> Compressed:
    """Pruning and learned-scale quantization switched on by a compression schedule (Schaefer et al. 2023).

    ``cfg.epochs`` of fine-tuning are split into the schedule's phases (each its own
    :func:`~snnkit.train.fit` run, seed ``cfg.seed + phase index``). Pruning (``sparsity >
    0``) is one-shot: at the first pruning phase the weights of lowest ``importance`` (default
    ``|w|``) are masked, over all layers at once (``planner="global"``) or in every layer
    alike (``"layer"``); the mask is fixed from then on. Quantization (``bits`` given)
    attaches ``quantizer`` (default DuQ, learned scales) to every layer when the first
    quantizing phase starts, fitted to the (masked) weights of that moment.

    Params:
        schedule: a :data:`COMPRESSION_SCHEDULES` name ("isolated", "cumulative", "joint").
        sparsity: fraction of the weights removed, in [0, 1) (0: no pruning).
        bits: weight bit width (None: full precision; DuQ needs >= 2, 2 is ternary).
        quantizer, options: a :data:`~snnkit.compress.quant.QUANTIZERS` name and its options.
        skip: layers neither pruned nor quantized.
        importance, planner: what scores the weights and how the cut is made.

    A global cut at a high sparsity can empty a whole layer. Pruning alone allows it (the
    network then outputs a constant, which is the collapse such sparsities show); with a
    quantizer it raises ValueError before training, naming the layers, since no quantizer
    can be fitted to a layer without weights.

    Info:
        ``phases`` (the schedule's :class:`Phase` list), ``empty_layers`` (weights the mask
        removed entirely), ``quantization_error`` (relative L2 error of each quantized layer
        when attached; only when quantizing).
    """
    return _phased(model, cfg, run, schedule=schedule, sparsity=sparsity, bits=bits, quantizer=quantizer,
                   options=options, per_channel=False, skip=skip, importance=importance, planner=planner)


@METHODS.register("prune")
def prune_method(model: nn.Module, data, cfg: TrainConfig, run: Run, *, sparsity: float = 0.5, skip: Skip = None,
          importance: str = "magnitude", planner: str = "global") -> Compressed:
    """One-shot unstructured pruning, then ``cfg.epochs`` of fine-tuning with the mask fixed.

    The ``sparsity`` fraction of the weights with the lowest ``importance`` (default ``|w|``;
    any weight-level importance: ``"lamp"``, ``"random"``) are masked, over all layers at once
    (``planner="global"``) or in every layer alike (``"layer"``). The magnitude baseline of
    papers 2 and 3 (:func:`duq` without a quantizer).

    Info:
        ``phases``, ``empty_layers``: as ``"duq"``.
    """
    return _phased(model, cfg, run, schedule="joint", sparsity=sparsity, bits=None, quantizer="duq",
                   options=None, per_channel=False, skip=skip, importance=importance, planner=planner)


@METHODS.register("quantize")
def quantize_method(model: nn.Module, data, cfg: TrainConfig, run: Run, *, bits: int = 8, quantizer: str = "uniform",
             options: Mapping[str, Any] | None = None, per_channel: bool = False, skip: Skip = None) -> Compressed:
    """A quantizer on every Conv/Linear layer (:func:`~snnkit.compress.quant.quantize_model`),
    then ``cfg.epochs`` of quantization-aware training (0: post-training quantization).

    Params:
        bits: weight bit width.
        quantizer, options: a :data:`~snnkit.compress.quant.QUANTIZERS` name ("uniform",
            "uniform-channel", "vanilla", "rescaw", "duq") and its options.
        per_channel: one scale per output channel.
        skip: layers kept in full precision (e.g. ``("first", "last")``).

    Info:
        ``phases``; ``quantization_error``: relative L2 error of each layer's weight when the
        quantizer was attached.
    """
    return _phased(model, cfg, run, schedule="joint", sparsity=0.0, bits=bits, quantizer=quantizer,
                   options=options, per_channel=per_channel, skip=skip, importance="magnitude", planner="global")

