"""Figures of compression: weights against a quantization grid, and which channels each
pruning criterion keeps next to their spike maps.

Returns matplotlib Figures with labelled axes, like :mod:`snnkit.notebook.plots`, and
leaves saving and showing to the caller.
"""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

__all__ = ["grid_histogram", "kept_channels"]


def kept_channels(maps: torch.Tensor, keeps: Mapping[str, torch.Tensor], title: str = "",
                  max_channels: int = 32) -> Figure:
    """Each channel's time-averaged spike map, and under it which criteria keep it.

    Args:
        maps: (C, H, W) spike maps of one layer (spikes per step, averaged over samples),
            or (C,) firing rates of a linear layer (drawn as bars).
        keeps: criterion name -> kept channel indices (ascending or not).
        title: figure title (default: the layer's channel count).
        max_channels: draw the first ``max_channels`` channels only (a row of tiny maps
            stays readable up to about 32).

    The lower panel has one row per criterion: a dark cell is a kept channel, a light one
    a pruned channel.
    """
    if maps.dim() not in (1, 3):
        raise ValueError(f"maps of shape {tuple(maps.shape)}: expected (C, H, W) spike maps or (C,) rates")
    if not keeps:
        raise ValueError("keeps is empty: expected at least one criterion's kept channels")
    C = maps.shape[0]
    shown = min(C, max_channels)
    kept = np.zeros((len(keeps), shown))
    for row, idx in enumerate(keeps.values()):
        idx = torch.as_tensor(idx, dtype=torch.long)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= C):
            raise ValueError(f"kept channels {idx.tolist()}: expected indices in [0, {C - 1}]")
        idx = idx[idx < shown]
        kept[row, idx.numpy()] = 1.0
    m = maps.detach().float().cpu()
    fig = plt.figure(figsize=(min(13.0, 1.5 + 0.38 * shown), 1.9 + 0.3 * len(keeps)))
    grid = fig.add_gridspec(2, shown, height_ratios=[1.0, 0.3 * len(keeps)], hspace=0.12, wspace=0.08)
    vmax = max(float(m.max()), 1e-9)
    if m.dim() == 3:
        for c in range(shown):
            ax = fig.add_subplot(grid[0, c])
            ax.imshow(m[c].numpy(), cmap="magma", vmin=0.0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(str(c), fontsize=7)
        fig.axes[0].set_ylabel("spike map", fontsize=8)
    else:
        ax = fig.add_subplot(grid[0, :])
        ax.bar(np.arange(shown), m[:shown].numpy(), color="C0")
        ax.set_xlim(-0.5, shown - 0.5)
        ax.set_xticks([])
        ax.set_ylabel("rate [spikes/step]", fontsize=8)
    ax = fig.add_subplot(grid[1, :])
    ax.grid(False)
    ax.imshow(kept, cmap=ListedColormap(["#e6e6e6", "#2b6a99"]), vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")
    ax.set_yticks(range(len(keeps)), list(keeps), fontsize=8)
    ax.set_xticks(range(shown), [str(c) for c in range(shown)], fontsize=6)
    ax.set_xlabel("channel (dark: kept, light: pruned)", fontsize=8)
    more = f", first {shown} drawn" if shown < C else ""
    fig.suptitle(title or f"{C} channels{more}", fontsize=10)
    return fig


def grid_histogram(x: torch.Tensor, bits: int, title: str = "", bins: int = 88) -> Figure:
    """Weights in the units of a [-1, 1] grid of ``2^b`` levels ``2k/s - 1`` (``s = 2^b - 1``).

    Args:
        x: what the quantizer feeds its grid (``W`` for the vanilla quantizer, ``W / gamma``
            for ReScaW), any shape.
        bits: the grid's bit-width; its levels are drawn as red lines when there are at
            most 64 of them.
        title: figure title.
        bins: histogram bins over [-1.1, 1.1]; values beyond are counted in the outermost
            bins, and the fraction clipped by the grid (``|x| > 1``) is written in the legend.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits={bits!r}: expected an integer >= 1")
    v = x.detach().flatten().float().cpu()
    if v.numel() == 0:
        raise ValueError("x is empty: expected the weights of a layer")
    s = 2 ** bits - 1
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    edges = np.linspace(-1.1, 1.1, bins + 1)
    ax.hist(np.clip(v.double().numpy(), -1.1, 1.1), bins=edges, color="C0", edgecolor="none",
            label=f"weights ({float((v.abs() > 1).float().mean()):.1%} beyond +-1, clipped)")
    ax.axvspan(-1.1, -1.0, color="0.85", zorder=0)
    ax.axvspan(1.0, 1.1, color="0.85", zorder=0)
    if s + 1 <= 64:
        for k in range(s + 1):
            ax.axvline(2 * k / s - 1, color="C3", lw=0.8, alpha=0.8, label="levels" if k == 0 else None)
    ax.set_xlim(-1.1, 1.1)
    ax.set(xlabel="weight in grid units (grid: [-1, 1])", ylabel="weights [count]")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or f"{bits} bits: {s + 1} levels", fontsize=10)
    fig.tight_layout()
    return fig
