"""Pareto fronts of accuracy against a cost, and the cheapest method within an accuracy budget.

A comparison table holds one row per method, ``{method: {metric: value}}``. On a chosen cost
(energy, size, latency: lower is better) against a score (accuracy: higher is better):

* :func:`pareto_front`: the methods no other method beats on both at once;
* :func:`cheapest_within`: the cheapest method whose score stays at or above a floor;
* :func:`pareto_plot`: the methods as points (with their spread over seeds), the front as a
  staircase, the floor as a line and the cheapest method within it ringed::

    front = pareto_front([row["energy_compute_uj"] for row in rows.values()],
                         [row["accuracy"] for row in rows.values()])
    best = cheapest_within(rows, "energy_compute_uj", min_score=0.93)
    pareto_plot(rows, "energy_compute_uj", highlight=best, min_score=0.93)
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["cheapest_within", "pareto_front", "pareto_plot"]


def _finite(name: str, values: Sequence[float]) -> list[float]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name}[{i}]={v!r}: expected a finite number")
        out.append(float(v))
    return out


def _short(v: float) -> str:
    """A tick label: ``0.05``, ``20``, ``50k``, ``2M``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(v) >= scale:
            return f"{v / (scale if suffix != 'k' else 1e3):g}{suffix}"
    return f"{v:g}"


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[int]:
    """Indices of the points on the Pareto front, by ascending cost.

    A point is on the front when no other point has a cost at most its cost and a score
    at least its score, one of them strictly. Of identical points the first is kept.
    ``pareto_front([1, 2, 3, 2], [0.5, 0.9, 0.95, 0.8]) == [0, 1, 2]`` (point 3 is
    beaten by point 1: same cost, lower score).

    Raises:
        ValueError: lengths differ, or a value is not a finite number.
    """
    costs, scores = _finite("costs", costs), _finite("scores", scores)
    if len(costs) != len(scores):
        raise ValueError(f"{len(costs)} costs and {len(scores)} scores: expected one of each per point")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i], i))
    front, best = [], -math.inf
    for i in order:
        if scores[i] > best:  # cheaper points all score lower: nothing beats this one
            front.append(i)
            best = scores[i]
    return front


def cheapest_within(rows: Mapping[str, Mapping[str, Any]], cost: str, min_score: float, *,
                    score: str = "accuracy", among: Sequence[str] | None = None) -> str | None:
    """The method of lowest ``cost`` whose ``score`` is at least ``min_score`` (None if none is).

    Ties in cost go to the higher score, then to the first in ``among`` (default: the
    order of ``rows``).

    Raises:
        ValueError: a method of ``among`` that is not in ``rows``, or a row without ``cost``
            or ``score``.
    """
    names = list(rows) if among is None else list(among)
    missing = [n for n in names if n not in rows]
    if missing:
        raise ValueError(f"methods {missing} are not in the table; expected names among {list(rows)}")
    for n in names:
        for key in (cost, score):
            if key not in rows[n]:
                raise ValueError(f"row {n!r} has no {key!r}; it has {sorted(rows[n])}")
    ok = [n for n in names if rows[n][score] >= min_score]
    if not ok:
        return None
    return min(ok, key=lambda n: (rows[n][cost], -rows[n][score], names.index(n)))


def pareto_plot(rows: Mapping[str, Mapping[str, float]], cost: str, score: str = "accuracy", *,
                methods: Sequence[str] | None = None,
                spread: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
                highlight: str | None = None, min_score: float | None = None, logx: bool = False,
                colors: Mapping[str, Any] | None = None, xlabel: str | None = None,
                ylabel: str | None = None, title: str | None = None, ax: Any = None,
                point_labels: bool = True) -> Any:
    """Draw ``score`` against ``cost`` for ``methods``, with the Pareto front; returns the axes.

    Args:
        rows: ``{method: {metric: value}}`` (means, when several seeds were run).
        cost: the metric on x (lower is better); score: the one on y (higher is better).
        methods: which rows to draw (default all), in legend order.
        spread: ``{method: {metric: (low, high)}}``: error bars (e.g. a 95 % interval over
            seeds) on either axis where given.
        highlight: a method to ring (e.g. :func:`cheapest_within`'s answer).
        min_score: draws the accuracy floor as a dotted line.
        logx: logarithmic cost axis.
        colors: ``{method: color}``, so that a method keeps its colour when the selection
            changes (default: the matplotlib cycle over ``rows``).
        ax: axes to draw into (default: a new figure's).
        point_labels: write each method's name beside its point (turn off where points lie
            close together and the legend names them).

    Raises:
        ValueError: no method to draw, or a method not in ``rows``.
    """
    import matplotlib.pyplot as plt

    names = list(rows) if methods is None else list(methods)
    if not names:
        raise ValueError("methods=[]: expected at least one method to draw")
    missing = [n for n in names if n not in rows]
    if missing:
        raise ValueError(f"methods {missing} are not in the table; expected names among {list(rows)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
    palette = dict(colors) if colors is not None else {n: f"C{i % 10}" for i, n in enumerate(rows)}
    xs = [rows[n][cost] for n in names]
    ys = [rows[n][score] for n in names]
    for n, x, y in zip(names, xs, ys):
        err = (spread or {}).get(n, {})
        xerr = [[x - err[cost][0]], [err[cost][1] - x]] if cost in err else None
        yerr = [[y - err[score][0]], [err[score][1] - y]] if score in err else None
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", ms=7, capsize=3, color=palette.get(n), label=n,
                    zorder=3)
        if point_labels:
            ax.annotate(n, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
    front = pareto_front(xs, ys)
    fx = [xs[i] for i in front]
    fy = [ys[i] for i in front]
    ax.step(fx, fy, where="post", color="k", lw=1, alpha=0.6, zorder=2, label="Pareto front")
    if highlight is not None and highlight in names:
        i = names.index(highlight)
        ax.plot([xs[i]], [ys[i]], "o", ms=17, mfc="none", mec="C3", mew=2, zorder=4,
                label=f"cheapest within budget: {highlight}")
    if min_score is not None:
        ax.axhline(min_score, color="C3", ls=":", lw=1, label=f"{score} floor {min_score:.3g}")
    if logx:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")  # ticks at 1, 2 and 5 per decade: a span of one decade still gets labels
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    elif all(float(x).is_integer() for x in xs):  # time steps, bits: integer ticks
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if min(xs) == max(xs):
            ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set(xlabel=xlabel or cost, ylabel=ylabel or score, title=title or f"{score} against {cost}")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ax
