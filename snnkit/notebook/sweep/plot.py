"""The sweep's figure: recorded numbers against a grid parameter, with t intervals."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ... import stats
from ..config import _atomic_write_bytes

def plot_summary(table: Any, x: str, metrics: Sequence[str], hue: Sequence[str] = (),
                 confidence: float = 0.95) -> Any:
    """Each of ``metrics`` against the grid parameter ``x``: the mean over seeds with its
    Student t interval (the same numbers as :func:`snnkit.stats.summarize`), one panel per metric.

    Args:
        table: one row per run.
        x: a grid parameter (its values are categories, in table order).
        metrics: numeric columns to plot.
        hue: other grid parameters; each combination of their values is one line.
        confidence: the interval's level.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: a column that is not in the table.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    missing = [c for c in (x, *metrics, *hue) if c not in table.columns]
    if missing:
        raise ValueError(f"{', '.join(map(repr, missing))}: not in the sweep table; columns: "
                         f"{', '.join(map(str, table.columns))}")
    if not metrics:
        raise ValueError("metrics: expected at least one number to plot")
    data = table.copy()
    data[x] = data[x].map(str)
    order = list(dict.fromkeys(data[x]))
    hue_col = None
    if hue:
        hue_col = ", ".join(hue)
        data[hue_col] = data[list(hue)].apply(
            lambda r: ", ".join(f"{h}={r[h]}" for h in hue), axis=1)
    n = data.groupby([x, *hue]).size() if len(data) else None
    seeds = (f"{int(n.min())}" if n.min() == n.max() else f"{int(n.min())}-{int(n.max())}") \
        if n is not None else "0"

    def interval(values: Any) -> tuple[float, float]:
        iv = stats.mean_interval(list(values), confidence)
        return iv.low, iv.high

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sns.pointplot(data=data, x=x, y=metric, hue=hue_col, order=order, errorbar=interval,
                      dodge=0.3 if hue_col and data[hue_col].nunique() > 1 else False,
                      capsize=0.15, ax=ax)
        ax.set_title(metric)
    fig.suptitle(f"mean and {confidence:.0%} t-interval over {seeds} seed(s) per point", fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save a figure as PNG atomically (150 dpi) and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    path = Path(path)
    _atomic_write_bytes(path, buf.getvalue())
    return path


