"""Tables and figures of notebook 05 (Gou et al. 2025: LAMP with rewinding, the KL rule for T).

The notebook keeps its cells to library calls; what it shows is built here:

* :func:`event_options`, :func:`event_data`: the loader options of the event data set the
  KL rule runs on, and that data set cut to the clips a profile uses;
* :func:`kl_figure`, :func:`threshold_figure`: the KL curves, the chosen t and the
  accuracy against t;
* :func:`spatial_table`: the per-round test accuracies of the pruning rules as tables
  (:class:`SpatialStudy`), and :func:`sparsity_figure`, :func:`layer_figure` from them.

Accuracies are fractions in [0, 1]; sparsities fractions of the conv and linear weights
that are masked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..compress.core import Compressed
from ..compress.temporal import KLChoice
from ..data import Dataset, load_dataset

__all__ = ["RULE_LABELS", "SpatialStudy", "event_data", "event_options", "kl_figure", "layer_figure", "sparsity_figure", "spatial_table",
           "threshold_figure"]

#: Validation and test clips per class of ``event-gestures-hard`` in notebook 05 (the
#: loader's test split, a smaller validation split).
HARD_VAL, HARD_TEST = 5, 45

#: The rules' names in figures, as the papers write them.
RULE_LABELS = {"lamp": "LAMP", "global": "global", "uniform": "uniform", "uniform+": "Uniform+"}


def event_options(dataset: str, timesteps: int, size: int, clips_per_class: int | None) -> dict:
    """Loader options of the event data set: ``timesteps`` frames of ``size`` x ``size``
    pixels; for ``event-gestures-hard`` also :data:`HARD_VAL` / :data:`HARD_TEST` validation /
    test clips per class and ``clips_per_class`` training clips (None: the loader's default)."""
    options = {"timesteps": timesteps, "size": size}
    if dataset == "event-gestures-hard":
        options.update(n_val=HARD_VAL, n_test=HARD_TEST)
        if clips_per_class is not None:
            options["n_train"] = clips_per_class
    return options


def event_data(dataset: str, timesteps: int, size: int, clips_per_class: int | None, test_clips: int | None = None,
               *, seed: int = 0) -> Dataset:
    """The event data set of notebook 05: ``timesteps`` frames of ``size`` x ``size`` pixels.

    ``event-gestures-hard`` is generated with ``clips_per_class`` training clips per class
    (:func:`event_options`); a set read from files (``dvs-gesture``) is loaded whole and its
    training split cut to ``clips_per_class`` times the number of classes (stratified,
    seeded; ``None`` keeps it whole). ``test_clips`` cuts the test split the same way
    (``None``: whole).

    Returns:
        A :class:`~snnkit.data.Dataset` whose samples are (timesteps, 2, size, size).
    """
    ds = load_dataset(dataset, seed=seed, **event_options(dataset, timesteps, size, clips_per_class))
    # the generated set is made with clips_per_class training clips; a set read from files is cut
    train = None if dataset == "event-gestures-hard" or clips_per_class is None else clips_per_class * ds.num_classes
    if train is None and test_clips is None:
        return ds
    return ds.subset(train=train, test=test_clips, seed=seed)


def kl_figure(choices: Sequence[KLChoice], acc_by_t: Mapping[int, Sequence[float]], full_acc: Sequence[float],
              chosen_acc: Sequence[float], threshold: float) -> Figure:
    """Left: every run's normalised KL curve and its chosen t; right: the test accuracy of
    the networks trained at the full T when fed the first t frames (mean and range over
    runs), at the full T, and of the networks trained and tested at the chosen t.

    Args:
        choices: one :class:`~snnkit.compress.temporal.KLChoice` per run.
        acc_by_t: run seed -> test accuracy at t = 1..T (T values).
        full_acc, chosen_acc: per run, the test accuracy trained and tested at the full T
            and at the chosen t.
        threshold: the normalised-KL threshold drawn.
    """
    T = len(choices[0].normalised)
    ts = np.arange(1, T + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, c in enumerate(choices):
        ax1.plot(ts, c.normalised.numpy(), "o-", color="C0", alpha=0.7, lw=1.2, ms=4,
                 label="one curve per run" if i == 0 else None)
        ax1.plot(c.T, float(c.normalised[c.T - 1]), "*", color="C3", ms=13, label="chosen t" if i == 0 else None)
    ax1.axhline(threshold, color="k", ls=":", lw=1, label=f"threshold {threshold:g}")
    ax1.set(xlabel="t [time steps fed]", ylabel="normalised KL [0..1]", xticks=_ticks(T),
            title="KL to the labels of the output averaged over t steps")
    ax1.legend(fontsize=8)
    acc_t = np.array(list(acc_by_t.values()))
    ax2.plot(ts, acc_t.mean(0), "o-", ms=4, label=f"trained at T = {T}, fed the first t frames")
    if len(acc_t) > 1:
        ax2.fill_between(ts, acc_t.min(0), acc_t.max(0), alpha=0.2)
    ax2.plot([T], [np.mean(full_acc)], "s", color="C0", ms=9, label=f"trained and tested at T = {T} (mean)")
    ax2.plot([c.T for c in choices], chosen_acc, "*", color="C3", ms=13, label="trained and tested at the chosen t")
    ax2.set(xlabel="t [time steps]", ylabel="test accuracy [fraction]", xticks=_ticks(T), ylim=(0, 1.02),
            title=f"Accuracy against t ({len(choices)} run(s))")
    ax2.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def threshold_figure(choice: KLChoice, acc_by_t: Sequence[float]) -> Figure:
    """The normalised KL curve of one run with the t its threshold picks, and that run's
    full-T network's test accuracy when fed the first t frames (``acc_by_t``, T values)."""
    T = len(choice.normalised)
    ts = np.arange(1, T + 1)
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.plot(ts, choice.normalised.numpy(), "o-", ms=4, label="normalised KL")
    ax.plot(ts, acc_by_t, "s--", color="C2", ms=4, label="test accuracy, first t frames")
    ax.axhline(choice.threshold, color="k", ls=":", lw=1)
    ax.axvline(choice.T, color="C3", lw=2)
    ax.set(xlabel="t [time steps fed]", ylabel="[0..1]", xticks=_ticks(T), ylim=(0, 1.02),
           title=f"threshold {choice.threshold:.3f}: t = {choice.T} of {T} ({choice.time_reduction:.0f} % fewer "
                 f"steps), accuracy {acc_by_t[choice.T - 1]:.3f}")
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return fig


@dataclass
class SpatialStudy:
    """The pruning rules' test accuracies, as tables.

    Attributes:
        rounds: one row per rule, run and round: ``method``, ``run`` (0-based), ``round``
            (1-based), ``sparsity``, ``test accuracy``.
        final: the rows of the last round.
        by_method: mean test accuracy at the last round, per rule (rule order).
        by_run: test accuracy at the last round, one row per run, one column per rule.
        by_round: rule -> mean test accuracy after each round.
        layer_sparsity: rule -> layer name (conv1, ...) -> sparsity after the last round
            (first run).
        lamp_margins: per run, LAMP's accuracy minus the best other rule's, in points.
    """

    rounds: pd.DataFrame
    final: pd.DataFrame
    by_method: pd.Series
    by_run: pd.DataFrame
    by_round: dict[str, list[float]]
    layer_sparsity: dict[str, dict[str, float]]
    lamp_margins: list[float]


def spatial_table(runs: Mapping[str, Sequence[Compressed]], dense_acc: Sequence[float],
                  labels: Mapping[str, str]) -> SpatialStudy:
    """Tables of ``runs`` (rule -> one ``"iterative"`` result per run, each with a test
    accuracy per round); ``labels`` maps module names to layer names (conv1, ..., fc).
    ``dense_acc`` (one per run) only checks that the runs line up."""
    names = list(runs)
    if any(len(v) != len(dense_acc) for v in runs.values()):
        raise ValueError(f"{ {m: len(v) for m, v in runs.items()} } runs per rule for {len(dense_acc)} dense runs; "
                         "expected one per dense run")
    rows = [{"method": m, "run": i, "round": k, "sparsity": s.sparsity, "test accuracy": s.test_acc}
            for m in names for i, run in enumerate(runs[m]) for k, s in enumerate(run.history, start=1)]
    df = pd.DataFrame(rows)
    last = int(df["round"].max())
    final = df[df["round"] == last]
    by_run = final.pivot(index="run", columns="method", values="test accuracy")[names]
    by_run.index = [f"run {i + 1}" for i in by_run.index]
    by_run.columns.name = None
    first = runs[names[0]][0].history[-1].layer_sparsity
    short = {n: labels.get(n.rpartition(".")[0], n) for n in first}
    margins = [100 * (by_run["lamp"].iloc[i] - max(by_run[m].iloc[i] for m in names if m != "lamp"))
               for i in range(len(by_run))] if "lamp" in names and len(names) > 1 else []
    return SpatialStudy(
        rounds=df, final=final, by_method=final.groupby("method")["test accuracy"].mean().reindex(names),
        by_run=by_run, by_round={m: df[df.method == m].groupby("round")["test accuracy"].mean().tolist() for m in names},
        layer_sparsity={m: {short[n]: v for n, v in runs[m][0].history[-1].layer_sparsity.items()} for m in names},
        lamp_margins=[float(x) for x in margins])


def sparsity_figure(rounds: pd.DataFrame, dense_acc: Sequence[float], T: int) -> Figure:
    """Test accuracy against the fraction of weights removed, one line per rule (mean over
    runs, their range shaded), the dense network's mean as a dashed line. ``rounds``: the
    :attr:`SpatialStudy.rounds` table."""
    fig, ax = plt.subplots(figsize=(7, 4))
    n_runs = rounds["run"].nunique()
    for i, m in enumerate(dict.fromkeys(rounds["method"])):
        d = rounds[rounds.method == m].groupby("round").agg(sparsity=("sparsity", "mean"),
                                                             mean=("test accuracy", "mean"),
                                                             lo=("test accuracy", "min"), hi=("test accuracy", "max"))
        x = 100 * d["sparsity"]
        ax.plot(x, d["mean"], "o-", color=f"C{i}", ms=4, label=RULE_LABELS.get(m, m))
        if n_runs > 1:
            ax.fill_between(x, d["lo"], d["hi"], color=f"C{i}", alpha=0.12)
    ax.axhline(np.mean(dense_acc), color="k", ls="--", lw=1, label="dense")
    ax.set(xlabel="weights removed [% of conv and linear weights]", ylabel="test accuracy [fraction]",
           title=f"Iterative pruning with rewinding at T = {T} (mean, range over {n_runs} run(s))", ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def layer_figure(runs: Mapping[str, Sequence[Compressed]], round_: int, labels: Mapping[str, str],
                 sizes: Mapping[str, int], schedule: Sequence[float]) -> Figure:
    """Weights removed per layer after round ``round_`` (1-based) by each rule (first run),
    with each rule's mean test accuracy over the runs after that round in the title.
    ``sizes``: layer name -> weights; ``schedule``: overall sparsity after each round."""
    names = list(runs)
    if not 1 <= round_ <= len(schedule):
        raise ValueError(f"round_={round_!r}: expected a round in [1, {len(schedule)}]")
    first = runs[names[0]][0].history[round_ - 1].layer_sparsity
    short = {n: labels.get(n.rpartition(".")[0], n) for n in first}
    legend = {m: RULE_LABELS.get(m, m) for m in names}
    df = pd.DataFrame({legend[m]: [100 * runs[m][0].history[round_ - 1].layer_sparsity[n] for n in first]
                       for m in names}, index=[f"{short[n]}\n({sizes.get(short[n], 0):,})" for n in first])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    df.plot.bar(ax=ax, rot=0, width=0.8)
    accs = ", ".join(f"{legend[m]} {np.mean([run.history[round_ - 1].test_acc for run in runs[m]]):.3f}"
                     for m in names)
    ax.set(xlabel="layer (weights)", ylabel="weights removed [%]", ylim=(0, 105),
           title=f"round {round_}, {100 * schedule[round_ - 1]:.1f} % removed overall\naccuracy: {accs}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _ticks(T: int) -> list[int]:
    """At most about 10 integer ticks on a 1..T axis."""
    step = max(1, int(np.ceil(T / 10)))
    return list(range(1, T + 1, step)) + ([T] if (T - 1) % step else [])
