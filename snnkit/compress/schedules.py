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
"""
from __future__ import annotations

import math
import numbers
from typing import Callable

from ..registry import Registry

__all__ = ["SCHEDULES", "Schedule", "geometric", "iterative_sparsity", "linear"]

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
