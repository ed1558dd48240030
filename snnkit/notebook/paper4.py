"""Figures of the QP-SNN notebook (Wei et al. 2025, notebooks/04_qpsnn.ipynb).

- :func:`stability_panels`: how far each criterion's channel rankings agree across batches,
  per layer, by Spearman correlation and by top-k overlap (with its chance level);
- :func:`pruning_panels`: test accuracy per criterion right after the cut and after
  fine-tuning, on one y axis from 0, with each bar's value written on it.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["stability_panels", "pruning_panels"]

#: Display names of the criteria, in the paper's words.
CRITERION_NAMES = {"svs": "SVS", "sca": "SCA", "l1": "L1", "random": "random"}


def _name(criterion: str) -> str:
    return CRITERION_NAMES.get(criterion, criterion)


def _need(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: columns {missing} missing; expected {list(columns)} (got {list(df.columns)})")


def _bars(ax, means: pd.DataFrame, points: pd.DataFrame | None, decimals: int) -> None:
    """Grouped bars: one group per row of ``means``, one bar per column; value labels on top."""
    groups, series = list(means.index), list(means.columns)
    width = 0.8 / len(series)
    for j, col in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(xs, means[col].tolist(), width * 0.95, color=f"C{j}", alpha=0.6, label=_name(str(col)))
        ax.bar_label(bars, labels=[f"{v:.{decimals}f}" for v in means[col]], fontsize=7, padding=2)
        if points is not None:
            for x, g in zip(xs, groups):
                ys = points[(points["group"] == g) & (points["series"] == col)]["value"]
                ax.scatter([x] * len(ys), ys, color="k", s=8, zorder=3)
    ax.set_xticks(range(len(groups)), [_name(str(g)) for g in groups])


def stability_panels(stab: pd.DataFrame, chance_overlap: float, title: str = "") -> Figure:
    """Score agreement across batches, per layer and criterion (mean over seeds).

    Args:
        stab: one row per (criterion, seed, layer) with columns ``spearman`` (in [-1, 1])
            and ``overlap`` (in [0, 1]).
        chance_overlap: the top-k overlap of two unrelated rankings (k / C), drawn as a line.
        title: the figure's title.

    Returns:
        A figure with two panels (Spearman, overlap), y axes from 0 (or below, for a
        negative correlation) to 1.05, legends outside the bars.
    """
    _need(stab, ["criterion", "seed", "layer", "spearman", "overlap"], "stability table")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, m, ylabel in zip(axes, ("spearman", "overlap"),
                             ("Spearman correlation of the rankings", "overlap of the kept channels")):
        means = stab.pivot_table(index="layer", columns="criterion", values=m, aggfunc="mean")
        _bars(ax, means, None, 2)
        ax.set(xlabel="prunable layer", ylabel=ylabel, ylim=(min(0.0, float(stab[m].min()) - 0.05), 1.12))
    axes[1].axhline(chance_overlap, color="k", ls=":", lw=1, label=f"chance ({chance_overlap:.2f})")
    for ax in axes:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def pruning_panels(runs: pd.DataFrame, criteria: Sequence[str], unpruned: float, title: str = "",
                   after: str = "after fine-tuning") -> Figure:
    """Test accuracy per criterion right after pruning and after fine-tuning.

    Args:
        runs: one row per (criterion, seed) with columns ``criterion``, ``seed``,
            ``before fine-tuning`` and ``accuracy`` (fractions in [0, 1]).
        criteria: the criteria, in the order drawn.
        unpruned: the accuracy of the network before pruning (a dashed line).
        title: the figure's title; ``after``: the second panel's title.

    Returns:
        Two panels sharing one y axis from 0 to 1.05: bars are the means over seeds
        (labelled with their values), dots the seeds, the legend outside the panels.
    """
    _need(runs, ["criterion", "seed", "before fine-tuning", "accuracy"], "pruning table")
    unknown = sorted(set(criteria) - set(runs["criterion"]))
    if unknown:
        raise ValueError(f"criteria {unknown} have no runs; the table has {sorted(set(runs['criterion']))}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, col, panel in zip(axes, ("before fine-tuning", "accuracy"), ("right after pruning", after)):
        means = runs.groupby("criterion")[col].mean().reindex(list(criteria)).to_frame("accuracy")
        points = runs.rename(columns={"criterion": "group", col: "value"}).assign(series="accuracy")
        _bars(ax, means, points, 3)
        ax.axhline(unpruned, color="k", ls="--", lw=1, label=f"unpruned ({unpruned:.3f})")
        ax.set(xlabel="criterion", title=panel, ylim=(0.0, 1.12))
    axes[0].set_ylabel("test accuracy [fraction]")
    handles = [h for h, lab in zip(*axes[1].get_legend_handles_labels()) if lab.startswith("unpruned")]
    axes[1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
