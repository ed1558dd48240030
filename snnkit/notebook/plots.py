"""Figures the notebooks share: data samples, membrane traces, spike rasters, sweeps.

Every function returns a matplotlib Figure with labelled axes (units in brackets) and
leaves saving and showing to the caller (see :class:`snnkit.notebook.config.Recorder`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from ..neurons import lif_sequence
from ..surrogate import ATan

__all__ = ["samples", "data_grid", "event_frames", "membrane_trace", "spike_raster", "sweep", "bars",
           "metric_panels", "widths", "weight_levels"]


def samples(ds, n: int | None = None, split: str = "train") -> Figure:
    """One sample of each of the first ``n`` classes (None: all); events are shown as
    ON - OFF counts summed over time."""
    n = ds.num_classes if n is None else n
    part = getattr(ds, split)
    picks = []
    for c in range(min(ds.num_classes, n)):
        idx = (part.y == c).nonzero().flatten()
        if len(idx):
            picks.append(int(idx[0]))
    fig, axes = plt.subplots(1, len(picks), figsize=(1.3 * len(picks), 1.7), squeeze=False)
    for ax, i in zip(axes[0], picks):
        x = part.x[i]
        if ds.kind == "event":  # (T, 2, H, W) -> ON minus OFF, summed over time
            img = (x[:, 0] - x[:, 1]).sum(0).numpy()
            lim = max(abs(img).max(), 1e-6)
            ax.imshow(img, cmap="coolwarm", vmin=-lim, vmax=lim)
        else:
            ax.imshow(x.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray_r")
        ax.set_title(ds.classes[int(part.y[i])], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{ds.name}: one sample per class", fontsize=10)
    fig.tight_layout()
    return fig


def _draw_sample(ax, x: torch.Tensor, kind: str) -> None:
    """One sample on ``ax``: an image (C, H, W), a line (C, L), or events (T, 2, H, W) as all
    events (ON + OFF) summed over time, which traces the path of whatever moved."""
    if kind == "event":
        img = x.sum((0, 1)).numpy()
        # the 99th percentile, not the maximum: a hot pixel would wash out everything else
        ax.imshow(img, cmap="magma", vmin=0, vmax=max(float(np.percentile(img, 99)), 1e-6))
    elif x.dim() == 2:  # (C, L): one line per channel
        for c in range(x.shape[0]):
            ax.plot(np.arange(x.shape[1]), x[c].numpy(), lw=1, color=sns.color_palette()[c % 10])
    else:
        ax.imshow(x.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray_r")
    ax.set_xticks([])
    ax.set_yticks([])


def data_grid(datasets: Sequence, split: str = "train", notes: Mapping[str, str] | None = None) -> Figure:
    """A grid of samples: one row per data set, one sample of each class (the first in ``split``).

    Rows are labelled with the set's name, per-sample shape, split sizes and number of
    classes, plus ``notes[name]`` when given (e.g. an accuracy). Images are drawn in grey,
    sequences (C, L) as lines, events as the number of events (ON + OFF) at each pixel over
    the whole clip (bright: many).
    """
    datasets = list(datasets)
    if not datasets:
        raise ValueError("datasets is empty; expected at least one Dataset")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split={split!r}: expected 'train', 'val' or 'test'")
    cols = max(ds.num_classes for ds in datasets)
    fig, axes = plt.subplots(len(datasets), cols, figsize=(1.05 * cols + 1.6, 1.25 * len(datasets) + 0.2),
                             squeeze=False)
    for row, ds in zip(axes, datasets):
        part = getattr(ds, split)
        for c, ax in enumerate(row):
            idx = (part.y == c).nonzero().flatten() if c < ds.num_classes else []
            if len(idx) == 0:
                ax.axis("off")
                continue
            _draw_sample(ax, part.x[int(idx[0])], ds.kind)
            ax.set_title(ds.classes[c] if ds.classes else str(c), fontsize=6)
        sizes = f"{len(ds.train)} / {len(ds.val)} / {len(ds.test)}"
        label = f"{ds.name}\n{ds.kind} {tuple(ds.input_shape)}\n{sizes}\n{ds.num_classes} classes"
        if notes and ds.name in notes:
            label += f"\n{notes[ds.name]}"
        row[0].set_ylabel(label, fontsize=6.5, rotation=0, ha="right", va="center", labelpad=6)
    fig.suptitle(f"one {split} sample per class (rows: set, per-sample shape, train / val / test, classes)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def event_frames(x: torch.Tensor, title: str = "", max_frames: int = 10) -> Figure:
    """ON (red) and OFF (blue) event counts of one sample x (T, 2, H, W), frame by frame."""
    T = x.shape[0]
    steps = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    fig, axes = plt.subplots(1, len(steps), figsize=(1.2 * len(steps), 1.6), squeeze=False)
    lim = max(float((x[:, 0] - x[:, 1]).abs().max()), 1e-6)
    for ax, t in zip(axes[0], steps):
        ax.imshow((x[t, 0] - x[t, 1]).numpy(), cmap="coolwarm", vmin=-lim, vmax=lim)
        ax.set_title(f"t={t}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "events per step (red ON, blue OFF)", fontsize=10)
    fig.tight_layout()
    return fig


def membrane_trace(
    current: torch.Tensor, beta: float, threshold: float, reset: str = "subtract"
) -> Figure:
    """Membrane potential and spikes of one LIF neuron driven by ``current`` (T,)."""
    spk, mem = lif_sequence(current.reshape(-1, 1), beta, threshold, ATan(), reset)
    t = np.arange(len(current))
    fig, (ax_i, ax_u) = plt.subplots(2, 1, figsize=(7.2, 3.6), sharex=True, height_ratios=(1, 2))
    ax_i.step(t, current.numpy(), where="mid", color="0.3")
    ax_i.set_ylabel("input I [a.u.]")
    ax_u.plot(t, mem.flatten().numpy(), marker=".", label="membrane U")
    ax_u.axhline(threshold, color="C3", ls="--", label=f"threshold {threshold:g}")
    fired = spk.flatten().numpy() > 0
    ax_u.plot(t[fired], np.full(fired.sum(), threshold), "v", color="C3", label=f"spikes ({fired.sum()})")
    ax_u.set_xlabel("time step t")
    ax_u.set_ylabel("U [a.u.]")
    ax_u.set_title(f"LIF neuron: beta={beta:g}, {reset} reset", fontsize=10)
    ax_i.xaxis.set_major_locator(MaxNLocator(integer=True))
    # outside the axes: inside, the legend covers the trace whatever the sliders do
    ax_u.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def spike_raster(spikes: torch.Tensor, title: str = "", max_neurons: int = 200) -> Figure:
    """Raster of spikes (T, N): a dot per spike, neuron index against time step.

    Only neurons that spike are drawn: at most ``max_neurons`` of them, evenly spaced over
    the active ones, so a flattened (C, H, W) layer is sampled across all its channels (the
    first few hundred neurons of a layer are often all silent). The y axis keeps each
    neuron's index in the layer.
    """
    active = spikes.any(0).nonzero().flatten()
    if len(active) > max_neurons:
        active = active[torch.linspace(0, len(active) - 1, max_neurons).round().long()]
    t, row = spikes[:, active].nonzero(as_tuple=True)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.scatter(t.numpy(), active[row].numpy(), s=4, marker="|", color="k")
    ax.set_xlabel("time step t")
    ax.set_ylabel("neuron index")
    ax.set_xlim(-0.5, spikes.shape[0] - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    n_active = int(spikes.any(0).sum())
    shown = f", {len(active)} drawn" if len(active) < n_active else ""
    ax.set_title(title or f"{int(spikes.sum())} spikes from {n_active} of {spikes.shape[1]} neurons{shown}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def sweep(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
) -> Figure:
    """One line per named series against a common x, e.g. accuracy against T."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, (name, ys) in enumerate(series.items()):
        ax.plot(list(x), list(ys), marker="o", label=name, color=sns.color_palette()[i % 10])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if all(float(v).is_integer() for v in x):  # epochs, time steps, bits: no 1.5 ticks
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if logx:
        ax.set_xscale("log", base=2)
    if title:
        ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bars(values: Mapping[str, float], ylabel: str, title: str = "", log: bool = False) -> Figure:
    """A labelled bar per entry, e.g. energy per inference of three models."""
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(values), 3.2))
    names, ys = list(values), [float(v) for v in values.values()]
    sns.barplot(x=names, y=ys, hue=names, ax=ax, palette="deep", legend=False)
    for i, y in enumerate(ys):
        ax.annotate(f"{y:.3g}", (i, y), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def metric_panels(rows: Mapping[str, Mapping[str, float]], metrics: Mapping[str, str], title: str = "") -> Figure:
    """Several models side by side on metrics of different units: one panel per metric, with
    its own axis, and one bar per model labelled with its value (3 significant digits, whole
    numbers with thousands separators from 100 on: ``24.1``, ``1.65``, ``5,109``).

    Bars keep one colour per model across the panels, named once in a legend below them, so
    long model names never crowd the x axes.

    Args:
        rows: ``{model name: {metric key: value}}``, e.g. ``{"imported": {...}, "DuQ, 4 bits": {...}}``.
        metrics: ``{metric key: axis label with unit}`` in panel order, e.g.
            ``{"accuracy": "test accuracy [%]", "size_kb": "size [kB]"}``.
        title: the figure's title.

    Raises:
        ValueError: no rows or no metrics, or a row without one of the metrics (named).
    """
    if not rows or not metrics:
        raise ValueError(f"rows has {len(rows)} models and metrics {len(metrics)} entries: "
                         "expected at least one of each")
    for name, row in rows.items():
        missing = [m for m in metrics if m not in row]
        if missing:
            raise ValueError(f"model {name!r} has no value for {missing}; it has {sorted(row)}")
    names = list(rows)
    colors = sns.color_palette("deep", len(names))
    width = 0.6 + len(metrics) * (0.5 + 0.55 * len(names))
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(width, 4.0), 3.0), squeeze=False)
    for ax, (key, label) in zip(axes[0], metrics.items()):
        ys = [float(rows[n][key]) for n in names]
        bars = ax.bar(range(len(names)), ys, color=colors, width=0.7)
        for i, y in enumerate(ys):
            ax.annotate(f"{y:,.0f}" if abs(y) >= 100 else f"{y:.3g}", (i, y), ha="center", va="bottom", fontsize=8)
        ax.set_xticks([])
        ax.set_ylabel(label, fontsize=9)
        ax.margins(y=0.18)  # room for the value labels
        if min(ys) >= 0:
            ax.set_ylim(bottom=0)
    fig.legend(bars, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def widths(labels: Sequence[str], series: Mapping[str, Sequence[int]], title: str = "", log: bool = False) -> Figure:
    """Grouped bars of layer widths, e.g. ``{"baseline": [64, 64], "PCA-pruned": [27, 24]}``,
    each bar labelled with its width (``log``: a log y axis, for widths of 2 beside 512)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    n = len(series)
    x = np.arange(len(labels))
    for i, (name, ws) in enumerate(series.items()):
        bars = ax.bar(x + (i - (n - 1) / 2) * 0.8 / n, list(ws), width=0.8 / n, label=name,
                      color=sns.color_palette()[i % 10])
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, list(labels))
    ax.set(xlabel="layer", ylabel="width [channels or units" + (", log scale]" if log else "]"))
    if log:
        ax.set_yscale("log")
        top = max(max(ws) for ws in series.values())
        ax.yaxis.set_major_locator(FixedLocator([v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
                                                 if v <= 2 * top]))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.margins(y=0.15)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def weight_levels(w: torch.Tensor, levels: torch.Tensor, title: str = "", max_lines: int = 64) -> Figure:
    """Histogram of a layer's weights with its quantization levels as red lines (when at
    most ``max_lines`` of them: denser grids would hide the histogram)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.hist(w.detach().flatten().cpu().numpy(), bins=80, color="C0", alpha=0.8)
    levels = levels.flatten().unique()
    drawn = len(levels) <= max_lines
    if drawn:
        for v in levels.tolist():
            ax.axvline(v, color="C3", lw=0.6, alpha=0.7)
    ax.set(xlabel="weight value [a.u.]", ylabel="weights [count]")
    note = "levels as red lines" if drawn else f"{len(levels)} levels, too dense to draw"
    ax.set_title(f"{title} ({note})" if title else note, fontsize=10)
    fig.tight_layout()
    return fig
