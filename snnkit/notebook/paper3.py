"""Paper 3 (Schaefer et al. 2023): a quantization x pruning study priced on an accelerator.

:class:`QuantPruneStudy` trains each compressed net of the study once (the ``"duq"``
method of :func:`snnkit.compress.compress`) and keeps its test accuracy and its hardware
load (:func:`snnkit.metrics.hardware.profile`), so that the grid, the energy comparison,
the schedules and the claims reuse the same runs. A net is named by a :data:`Setting`
``(schedule, bits, sparsity)`` and the index of the pretrained net it starts from.

The figures return matplotlib Figures with labelled axes (like :mod:`snnkit.notebook.plots`)
and leave saving and showing to the caller.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..compress import compress
from ..data.containers import Split
from ..metrics import hardware
from ..metrics.hardware import HardwareReport, LayerLoad
from ..train import TrainConfig, evaluate
from ..weights import effective_weight

__all__ = [
    "QuantPruneStudy",
    "Setting",
    "cell_figure",
    "energy_split_figure",
    "energy_split_table",
    "grid_figure",
    "ratio_table",
    "zero_fraction",
]

#: ``(schedule, bits, sparsity)``: a schedule name, the weight bit width (None: full
#: precision) and the fraction of weights pruned (0: none).
Setting = tuple[str, int | None, float]

#: Seed offset between the fine-tuning runs of consecutive pretrained nets.
SEED_STRIDE = 100


class QuantPruneStudy:
    """The compressed nets of one study, each fine-tuned once and reused.

    Args:
        pretrained: the full-precision nets every compressed net starts from (never changed).
        train: the training split of the fine-tuning runs.
        test: the split accuracies are measured on.
        cfg: the fine-tuning config; run ``k`` uses seed ``cfg.seed + 100 k``.
        x_energy: (T, B, ...) input on which spike densities are measured for the
            hardware model.
        **params: further parameters of the ``"duq"`` method for every run (e.g.
            ``planner="layer"``: the same sparsity in every layer).

    ``study.accuracy("isolated", 2, 0.0, k)`` fine-tunes pretrained net ``k`` with DuQ at
    2 bits (the ternary net) the first time and returns its test accuracy [fraction].
    """

    def __init__(self, pretrained: Sequence[nn.Module], train: Split, test: Split, cfg: TrainConfig,
                 x_energy: Tensor, **params: object) -> None:
        if not pretrained:
            raise ValueError("pretrained is empty: expected at least one pretrained net")
        if x_energy.dim() < 3:
            raise ValueError(f"x_energy of shape {tuple(x_energy.shape)}: expected (T, B, ...) spikes or event counts")
        self.pretrained = list(pretrained)
        self.train, self.test, self.cfg, self.x_energy, self.params = train, test, cfg, x_energy, params
        self.models: dict[tuple, nn.Module] = {}
        self._accuracy: dict[tuple, float] = {}
        self._loads: dict[tuple, list[LayerLoad]] = {}

    def _key(self, schedule: str, bits: int | None, sparsity: float, net: int) -> tuple:
        if not isinstance(net, int) or isinstance(net, bool) or not 0 <= net < len(self.pretrained):
            raise ValueError(f"net={net!r}: expected an index in [0, {len(self.pretrained) - 1}]")
        return schedule, bits, float(sparsity), net

    def model(self, schedule: str, bits: int | None, sparsity: float, net: int = 0) -> nn.Module:
        """The compressed net of a setting, fine-tuned from pretrained net ``net`` on first use."""
        key = self._key(schedule, bits, sparsity, net)
        if key not in self.models:
            cfg = self.cfg.replace(seed=self.cfg.seed + SEED_STRIDE * net)
            self.models[key] = compress(self.pretrained[net], self.train, "duq", cfg, schedule=schedule, bits=bits,
                                        sparsity=float(sparsity), **self.params).model
        return self.models[key]

    def accuracy(self, schedule: str, bits: int | None, sparsity: float, net: int = 0) -> float:
        """Test accuracy [fraction] of a setting on pretrained net ``net``."""
        key = self._key(schedule, bits, sparsity, net)
        if key not in self._accuracy:
            self._accuracy[key] = float(evaluate(self.model(*key), self.test, self.cfg))
        return self._accuracy[key]

    def accuracies(self, schedule: str, bits: int | None, sparsity: float) -> list[float]:
        """Test accuracy [fraction] of a setting on every pretrained net, in order."""
        return [self.accuracy(schedule, bits, sparsity, k) for k in range(len(self.pretrained))]

    def loads(self, schedule: str, bits: int | None, sparsity: float, net: int = 0) -> list[LayerLoad]:
        """What each layer of that net asks of the hardware (full precision priced at 32 bits)."""
        key = self._key(schedule, bits, sparsity, net)
        if key not in self._loads:
            self._loads[key] = hardware.profile(self.model(*key), self.x_energy, bits or 32)
        return self._loads[key]

    def energy(self, setting: Setting, storage_format: str = "dense", density: str | float = "mean",
               net: int = 0) -> HardwareReport:
        """The hardware model's price of one inference of that net (normalized units)."""
        return hardware.inference_energy(self.loads(*setting, net), storage_format, density)


def zero_fraction(loads: Sequence[LayerLoad]) -> float:
    """Fraction of all weights of the loads that are exactly zero (pruned, or rounded to 0).

    A net of 10 weights with 7 zeros gives 0.7.
    """
    entries = sum(lo.entries for lo in loads)
    if entries == 0:
        raise ValueError("the loads hold no weights")
    return 1.0 - sum(lo.nonzero for lo in loads) / entries


def ratio_table(study: QuantPruneStudy, cheap: Setting, costly: Setting, names: tuple[str, str],
                nets: Sequence[int]) -> pd.DataFrame:
    """Energy of ``costly`` over ``cheap`` per net, every storage format of ``costly``, both densities.

    ``cheap`` is stored dense. Columns: ``net``, ``format``, ``density``, the two ``names``
    (energies in normalized units) and ``ratio`` (costly / cheap; above 1: ``costly``
    costs more).
    """
    rows = []
    for k in nets:
        for fmt in hardware.STORAGE_FORMATS.names():
            for density in hardware.DENSITIES:
                a = study.energy(cheap, "dense", density, k).total
                b = study.energy(costly, fmt, density, k).total
                rows.append({"net": k, "format": fmt, "density": density, names[0]: a, names[1]: b, "ratio": b / a})
    return pd.DataFrame(rows)


def energy_split_table(reports: Mapping[str, HardwareReport]) -> pd.DataFrame:
    """Energy of each net by level, in 10^3 normalized units, with its total and the
    share spent moving weights [%]; one row per net, columns named as a reader reads them."""
    rows = {}
    for name, r in reports.items():
        row = {hardware.LEVEL_NAMES[lv]: e / 1e3 for lv, e in r.by_level.items()}
        row["total"] = r.total / 1e3
        row["weights [%]"] = 100 * r.by_kind["weights"] / r.total
        rows[name] = row
    frame = pd.DataFrame(rows).T
    frame.index.name = "net [10^3 MAC units]"
    return frame


def energy_split_figure(reports: Mapping[str, HardwareReport], title: str = "") -> Figure:
    """Horizontal stacked bars: each net's energy per inference by level (DRAM, global
    buffer, scratchpad, compute), the share of each level written on its segment when wide
    enough, the total at the end of the bar; the legend sits above the bars."""
    if not reports:
        raise ValueError("reports is empty: expected at least one net's HardwareReport")
    names = list(reports)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.55 * len(names)))
    left = np.zeros(len(names))
    totals = np.array([reports[n].total for n in names]) / 1e3
    colors = sns.color_palette("deep", len(hardware.LEVELS))
    for lv, color in zip(hardware.LEVELS, colors):
        width = np.array([reports[n].by_level[lv] for n in names]) / 1e3
        ax.barh(names, width, left=left, color=color, label=hardware.LEVEL_NAMES[lv])
        for i, (x, w) in enumerate(zip(left, width)):
            if w > 0.07 * totals.max():
                ax.text(x + w / 2, i, f"{100 * w / totals[i]:.0f} %", ha="center", va="center", fontsize=8,
                        color="white")
        left += width
    for i, t in enumerate(totals):
        ax.text(t, i, f" {t:,.0f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.15 * totals.max())
    ax.invert_yaxis()
    ax.set_xlabel("energy per inference [10^3 MAC units]")
    ax.legend(ncol=len(hardware.LEVELS), loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, fontsize=8)
    if title:
        ax.set_title(title, pad=22)
    fig.tight_layout()
    return fig


def _grid_frame(values: Mapping[tuple[int, float], float]) -> pd.DataFrame:
    frame = pd.DataFrame([{"bits": b, "sparsity [%]": f"{100 * s:g}", "v": v} for (b, s), v in values.items()])
    order = [f"{100 * s:g}" for s in sorted({s for _, s in values})]
    table = frame.pivot(index="bits", columns="sparsity [%]", values="v").sort_index(ascending=False)
    return table[order]


def grid_figure(accuracy: Mapping[tuple[int, float], float], energy: Mapping[tuple[int, float], float],
                schedule: str, storage_format: str) -> Figure:
    """Two heat maps over bits x sparsity: test accuracy [fraction] and energy per inference
    [10^3 MAC units]; keys are ``(bits, sparsity)``."""
    if set(accuracy) != set(energy) or not accuracy:
        raise ValueError("accuracy and energy must hold the same (bits, sparsity) cells, at least one")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.heatmap(_grid_frame(accuracy), annot=True, fmt=".3f", vmin=0, vmax=1, cmap="viridis", ax=ax1,
                cbar_kws={"label": "test accuracy [fraction]"})
    ax1.set_title(f"test accuracy ({schedule} schedule)")
    sns.heatmap(_grid_frame({k: v / 1e3 for k, v in energy.items()}), annot=True, fmt=".0f", cmap="magma_r", ax=ax2,
                cbar_kws={"label": "10^3 MAC units"})
    ax2.set_title(f"energy per inference ({storage_format})")
    fig.tight_layout()
    return fig


def cell_figure(model: nn.Module, report: HardwareReport, accuracy: float, bits: int, sparsity: float,
                layers: Sequence[str]) -> Figure:
    """One net of the grid: its energy by level (bars with values) and the histogram of its
    non-zero weights over the named layers (quantized weights show as a few spikes; the
    zeros are counted in the title, not drawn)."""
    modules = dict(model.named_modules())
    missing = [n for n in layers if n not in modules]
    if missing:
        raise ValueError(f"layers {missing} are not modules of the model")
    w = torch.cat([effective_weight(modules[n]).detach().flatten().cpu() for n in layers])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    split = {hardware.LEVEL_NAMES[lv]: e / 1e3 for lv, e in report.by_level.items()}
    bars = ax1.bar(list(split), list(split.values()), color=sns.color_palette("deep", len(split)))
    ax1.bar_label(bars, fmt="%.0f", fontsize=8)
    ax1.set(ylabel="energy [10^3 MAC units]", title=f"total {report.total / 1e3:,.0f} ({report.storage_format})")
    ax1.margins(y=0.15)
    nz = w[w != 0]
    ax2.hist(nz.numpy(), bins=101, color="C0")
    ax2.set(xlabel="weight value", ylabel="count", yscale="log",
            title=f"{nz.numel():,} of {w.numel():,} weights non-zero ({100 * (1 - nz.numel() / w.numel()):.0f} % zero)")
    fig.suptitle(f"{bits} bits, {100 * sparsity:g} % pruned: test accuracy {accuracy:.3f}")
    fig.tight_layout()
    return fig
