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
"cumulative", "joint"; Schaefer et al. 2023).
"""
from __future__ import annotations

import copy
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from ..registry import Registry
from ..train import History, TrainConfig, fit
from .masks import prune_global
from .quant import quantize_model

__all__ = [
    "COMPRESSION_SCHEDULES", "CompressionRun", "Phase", "SCHEDULES", "Schedule", "cumulative", "geometric",
    "isolated", "iterative_sparsity", "joint", "linear", "run_compression",
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
# ``epochs``. :func:`run_compression` (below) trains a model through them.


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


@dataclass
class CompressionRun:
    """What :func:`run_compression` returns.

    Attributes:
        model: the fine-tuned, compressed model (masks and quantizers attached).
        schedule: the schedule's name.
        bits: weight bit width (None: full precision).
        sparsity: fraction of weights pruned (0: none).
        phases: the phases run, in order.
        histories: one :class:`~snnkit.train.History` per phase.
        seconds: wall time of the fine-tuning.
    """

    model: nn.Module
    schedule: str
    bits: int | None
    sparsity: float
    phases: list[Phase]
    histories: list[History] = field(default_factory=list)
    seconds: float = 0.0


def run_compression(
    model: nn.Module,
    data,
    cfg: TrainConfig,
    schedule: str = "joint",
    *,
    sparsity: float = 0.0,
    bits: int | None = None,
    quantizer: str = "duq",
    options: Mapping[str, Any] | None = None,
    val=None,
) -> CompressionRun:
    """Fine-tune a copy of a pretrained ``model`` for ``cfg.epochs`` epochs through a schedule.

    Pruning (``sparsity > 0``) is one-shot global magnitude pruning
    (:func:`snnkit.compress.masks.prune_global`) computed from the weights the first pruning
    phase starts from, i.e. the pretrained weights in every registered schedule; the mask is
    fixed from then on (masked weights stay 0 and get no gradient). Quantization
    (``bits`` given) attaches ``quantizer`` (default ``"duq"``, learned scales) to every
    Conv/Linear layer when the first quantizing phase starts, fitted to the (masked) weights
    of that moment; it stays on to the end. Each phase is one :func:`snnkit.train.fit` call
    (its own cosine learning-rate cycle, seed ``cfg.seed + phase index``).

    Args:
        model: the pretrained network (not modified).
        data: a :class:`~snnkit.data.Dataset` or a training :class:`~snnkit.data.Split`.
        cfg: training settings; ``cfg.epochs`` is the total over all phases (>= 1).
        schedule: a :data:`COMPRESSION_SCHEDULES` name.
        sparsity: fraction of all Conv/Linear weights to prune, in [0, 1).
        bits: weight bit width, or None for full precision.
        quantizer: a :data:`snnkit.compress.quant.QUANTIZERS` name.
        options: extra keywords for the quantizer.
        val: validation split for :func:`fit` (None: ``data.val`` if ``data`` has one).

    Raises:
        ValueError: unknown schedule, a schedule that does not fit the methods asked for
            (e.g. "isolated" with both), ``sparsity`` outside [0, 1).
    """
    fn = COMPRESSION_SCHEDULES.get(schedule)
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real) or not 0 <= sparsity < 1:
        raise ValueError(f"sparsity={sparsity!r}: expected a fraction in [0, 1)")
    phases = fn(cfg.epochs, prune=sparsity > 0, quantize=bits is not None)
    model = copy.deepcopy(model)
    run = CompressionRun(model, schedule, bits, float(sparsity), phases)
    t0 = time.perf_counter()
    pruned = quantized = False
    for i, phase in enumerate(phases):
        if phase.prune and not pruned:
            prune_global(model, sparsity)
            pruned = True
        if phase.quantize and not quantized:
            model, _ = quantize_model(model, bits, quantizer=quantizer, options=options)
            quantized = True
        run.histories.append(fit(model, data, cfg.replace(epochs=phase.epochs, seed=cfg.seed + i), val=val,
                                 desc=f"{schedule} phase {i + 1}"))
    run.model = model
    run.seconds = time.perf_counter() - t0
    return run
