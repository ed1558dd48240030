"""Paper 1 (Chowdhury, Garg and Roy, 2021): the pieces notebook 01 runs per seed.

* :func:`threshold_for_ratio`: the highest PCA variance threshold whose widths cut the
  parameters by at least a given factor (the paper's "around 99.9 %" is not a ratio, so the
  notebook reports both);
* :func:`uniform_widths`: the widths of a uniformly narrowed net with about the parameters
  of another one (the equal-parameter baseline: does PCA's per-layer allocation matter?);
* :func:`run_seed`: one seed of the spatial study: baseline SNN, PCA-pruned SNN, uniformly
  narrowed SNN of the same size (each trained ANN -> conversion -> fine-tuning), and their
  accuracy under input noise;
* :func:`energy_rows`, :func:`energy_ratio`: compute energy of SNNs and ANNs per input
  encoding, with the first layer's share (with direct input the first layer pays T x its
  MACs at 4.6 pJ each);
* figures: :func:`variance_curves`, :func:`timesteps_runs`, :func:`energy_bars`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import nn

from ..compress import Inputs, plan, score, variance_widths
from ..encoding import model_input
from ..metrics import count_params, energy, energy_per_op, measure
from ..metrics.robustness import accuracy_under_noise
from ..models import VGGSpec, build
from ..recipes import ann_to_snn
from ..train import TrainConfig

__all__ = ["SeedRun", "energy_bars", "energy_ratio", "energy_rows", "first_layer_share", "params_of", "run_seed",
           "threshold_for_ratio", "timesteps_runs", "uniform_widths", "variance_curves"]


def params_of(spec: VGGSpec) -> int:
    """Trainable parameters of the network ``spec`` builds (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        return count_params(build(spec, spiking=False, seed=0), trainable_only=True)


def threshold_for_ratio(curves: Sequence[torch.Tensor], spec: VGGSpec, ratio: float, *,
                        lo: float = 0.5, hi: float = 0.99999, steps: int = 40) -> float:
    """The highest variance threshold in ``[lo, hi]`` whose PCA widths give at least ``ratio``
    times fewer parameters than ``spec`` (bisection; the ratio falls as the threshold rises).

    Args:
        curves: per layer, the cumulative explained-variance curve (a selection's ``curves``).
        spec: the unpruned architecture (its widths match ``curves``).
        ratio: the parameter reduction to reach, > 1 (10 for the paper's 10x).

    Returns ``lo`` when even ``lo`` does not reach ``ratio``, ``hi`` when ``hi`` does.
    """
    if not ratio > 1:
        raise ValueError(f"ratio={ratio!r}: expected a reduction factor above 1, e.g. 10")
    if not 0 < lo < hi < 1:
        raise ValueError(f"lo={lo!r}, hi={hi!r}: expected 0 < lo < hi < 1")
    full = params_of(spec)

    def reaches(t: float) -> bool:
        return full / params_of(spec.with_widths(variance_widths(curves, t))) >= ratio

    if reaches(hi):
        return hi
    if not reaches(lo):
        return lo
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if reaches(mid) else (lo, mid)
    return lo


def uniform_widths(spec: VGGSpec, params: int, *, steps: int = 40) -> list[int]:
    """Widths of ``spec`` all scaled by one factor (rounded, at least 1) so that the net has
    about ``params`` trainable parameters (the closest such net found by bisection)."""
    if not (isinstance(params, int) and params >= 1):
        raise ValueError(f"params={params!r}: expected a positive int (trainable parameters)")

    def widths(m: float) -> list[int]:
        return [max(1, round(w * m)) for w in spec.widths]

    lo, hi = 0.0, 1.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if params_of(spec.with_widths(widths(mid))) <= params else (lo, mid)
    candidates = [widths(lo), widths(hi)]
    return min(candidates, key=lambda ws: abs(params_of(spec.with_widths(ws)) - params))


@dataclass
class SeedRun:
    """One seed of the spatial study (accuracies are test fractions in [0, 1]).

    Attributes:
        seed: the seed of weights, data order and rate spikes.
        baseline, pruned, uniform: the :class:`~snnkit.recipes.Hybrid` of the unpruned, the
            PCA-pruned and the uniformly narrowed net (ANN, converted and fine-tuned SNN).
        curves: per layer, the cumulative explained variance of the baseline's membranes.
        ratio_at_paper_threshold: parameter reduction at the paper's threshold.
        threshold: the threshold the pruned net was cut at.
        widths: the pruned and the uniform widths, ``{"PCA": [...], "uniform": [...]}``.
        params: ``{"baseline": n, "PCA": n, "uniform": n}`` trainable parameters.
        noise: ``{"baseline": {sigma: acc}, "PCA": {...}}`` accuracy under input noise.
    """

    seed: int
    baseline: object
    pruned: object
    uniform: object
    curves: list[torch.Tensor]
    ratio_at_paper_threshold: float
    threshold: float
    widths: dict[str, list[int]] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    noise: dict[str, dict[float, float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Parameter reduction of the pruned net (baseline / pruned)."""
        return self.params["baseline"] / self.params["PCA"]


def run_seed(spec: VGGSpec, data, ann_cfg: TrainConfig, snn_cfg: TrainConfig, *, seed: int,
             paper_threshold: float, target_ratio: float | None, pca_samples: int,
             noise_sigmas: Sequence[float], noise_samples: int | None = None, noise_resample: str = "step") -> SeedRun:
    """One seed of the spatial study: train the baseline (ANN, conversion, fine-tuning at
    ``snn_cfg.T`` with ``snn_cfg.encoding``), record its membranes' PCA on ``pca_samples``
    training images, cut it at the threshold reaching ``target_ratio`` (at
    ``paper_threshold`` when None), build a uniformly narrowed net of the same parameter
    count, train both the same way as the baseline, and measure baseline and pruned under
    Gaussian input noise on ``noise_samples`` test images (None: all): drawn from this seed,
    afresh at every time step by default (``noise_resample="step"``, the paper's noisy-input
    study), or once per image and kept over the steps (``"sample"``; see
    :func:`snnkit.metrics.accuracy_under_noise`)."""
    ann_cfg, snn_cfg = ann_cfg.replace(seed=seed), snn_cfg.replace(seed=seed)
    baseline = ann_to_snn(spec, data, ann_cfg, snn_cfg, desc=f"baseline SNN, seed {seed}")
    x = data.train.x[:min(pca_samples, len(data.train))]
    selection = plan(score(baseline.snn, "pca-variance", Inputs(x, T=snn_cfg.T, encoding=snn_cfg.encoding)),
                     "variance", threshold=paper_threshold)
    full = params_of(spec)
    paper_ratio = full / params_of(spec.with_widths(selection.widths))
    threshold = paper_threshold if target_ratio is None else threshold_for_ratio(selection.curves, spec, target_ratio)
    pruned_widths = variance_widths(selection.curves, threshold)
    pruned_params = params_of(spec.with_widths(pruned_widths))
    even = uniform_widths(spec, pruned_params)
    pruned = ann_to_snn(spec.with_widths(pruned_widths), data, ann_cfg, snn_cfg, desc=f"PCA-pruned SNN, seed {seed}")
    uniform = ann_to_snn(spec.with_widths(even), data, ann_cfg, snn_cfg, desc=f"uniform SNN, seed {seed}")
    test = data.test if noise_samples is None else data.test.subset(noise_samples, seed=seed)
    noise = {name: accuracy_under_noise(h.snn, test, list(noise_sigmas), snn_cfg, seed=seed, resample=noise_resample)
             for name, h in (("baseline", baseline), ("PCA", pruned))}
    return SeedRun(seed, baseline, pruned, uniform, list(selection.curves), paper_ratio, threshold,
                   widths={"PCA": pruned_widths, "uniform": even},
                   params={"baseline": full, "PCA": pruned_params, "uniform": params_of(spec.with_widths(even))},
                   noise=noise)


def first_layer_share(report, precision: str = "fp32") -> float:
    """Fraction of a network's compute energy (:func:`snnkit.metrics.energy`) spent in its
    first Conv/Linear layer: ``report`` from :func:`snnkit.metrics.measure`."""
    mac_pj, add_pj = energy_per_op(precision)
    total = energy(report, precision)["total_pj"]
    first = report.layers[0]
    return (first.macs * mac_pj + first.synops * add_pj) / total if total > 0 else 0.0


def energy_rows(snns: Mapping[str, tuple[nn.Module, int]], anns: Mapping[str, nn.Module], x: torch.Tensor,
                encodings: Sequence[str], *, seed: int = 0) -> list[dict[str, object]]:
    """Compute energy per image (45 nm, fp32) of each SNN under each input encoding, and of each ANN.

    Args:
        snns: ``{label: (snn, T)}``.
        anns: ``{label: ann}``.
        x: static test images (B, C, H, W) in [0, 1].
        encodings: input encodings to measure every SNN with ("rate", "direct").
        seed: seeds the rate spikes.

    Returns:
        One dict per row: ``network``, ``input``, ``T``, ``energy (uJ)``, ``first layer (%)``,
        ``spikes / image``.
    """
    rows = []
    for label, ann in anns.items():
        report = measure(ann, model_input(x, 1, spiking=False))
        rows.append({"network": label, "input": "analog", "T": 1, "energy (uJ)": energy(report)["total_uj"],
                     "first layer (%)": 100 * first_layer_share(report), "spikes / image": 0.0})
    for label, (snn, T) in snns.items():
        for enc in encodings:
            gen = torch.Generator().manual_seed(seed)
            report = measure(snn, model_input(x, T, enc, generator=gen))
            rows.append({"network": label, "input": enc, "T": T, "energy (uJ)": energy(report)["total_uj"],
                         "first layer (%)": 100 * first_layer_share(report),
                         "spikes / image": report.spikes_per_inference})
    return rows


def energy_ratio(snn: nn.Module, ann: nn.Module, x: torch.Tensor, T: int, encoding: str, *, seed: int = 0) -> float:
    """How many times less compute energy (45 nm, fp32) ``snn`` spends than ``ann`` per image
    of ``x`` (B, C, H, W), the SNN run for ``T`` steps with ``encoding``."""
    gen = torch.Generator().manual_seed(seed)
    snn_uj = energy(measure(snn, model_input(x, T, encoding, generator=gen)))["total_uj"]
    ann_uj = energy(measure(ann, model_input(x, 1, spiking=False)))["total_uj"]
    return ann_uj / snn_uj


def variance_curves(labels: Sequence[str], curves: Sequence[torch.Tensor], thresholds: Mapping[str, float]) -> Figure:
    """Cumulative explained variance of each layer against the fraction of its channels kept,
    with each named threshold as a horizontal line (the y axis shows how far below 1 it is)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, curve in zip(labels, curves):
        k = np.arange(1, len(curve) + 1)
        gap = np.clip(1.0 - curve.double().numpy(), 1e-6, None)
        ax.plot(k / len(curve), gap, label=label)
    for i, (name, t) in enumerate(thresholds.items()):
        ax.axhline(1.0 - t, color="k", ls=("--", ":")[i % 2], lw=1, label=f"threshold {name}: {t:.4f}")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set(xlabel="principal components kept [fraction of the layer's channels]",
           ylabel="variance not explained [fraction, log scale]", title="Membrane-potential PCA per layer")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def timesteps_runs(gradual: Mapping[int, Sequence[float]], direct: Sequence[float], title: str = "") -> Figure:
    """Test accuracy of the gradual schedule at each T (mean line, one dot per seed) and of
    direct training at the final T (squares), T decreasing left to right as in the schedule."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    Ts = list(gradual)
    pos = {T: i for i, T in enumerate(Ts)}
    ax.plot(range(len(Ts)), [float(np.mean(gradual[T])) for T in Ts], "o-", color="C0", label="gradual (mean of seeds)")
    for T in Ts:
        ax.scatter([pos[T]] * len(gradual[T]), gradual[T], color="C0", alpha=0.4, s=14)
    ax.scatter([pos[Ts[-1]] + 0.08] * len(direct), direct, color="C3", marker="s", s=22, label="direct at final T (seeds)")
    ax.set_xticks(range(len(Ts)), [str(T) for T in Ts])
    ax.set(xlabel="time steps T [steps of latency]", ylabel="test accuracy [fraction]", title=title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def energy_bars(table: pd.DataFrame, xlabel: str) -> Figure:
    """Horizontal bars of ``table["energy (uJ)"]`` (index: network, input) on a log axis, each
    labelled with its value and, for SNNs, the first layer's share."""
    labels = [f"{net}, {inp}" for net, inp in table.index]
    values = table["energy (uJ)"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.4))
    colors = [sns.color_palette()[1 if inp == "analog" else 0] for _, inp in table.index]
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    for i, (v, share, (_, inp)) in enumerate(zip(values, table["first layer (%)"], table.index)):
        ax.text(v, i, f" {v:.3g} uJ" + ("" if inp == "analog" else f" (first layer {share:.0f} %)"), va="center",
                fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(values.min() / 2, values.max() * 30)
    ax.set(xlabel=xlabel, title="Compute energy per image (orange: ANN, blue: SNN)")
    fig.tight_layout()
    return fig
