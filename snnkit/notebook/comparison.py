"""The comparison notebook's table, fronts and written conclusion, from per-seed rows.

:func:`snnkit.compress.comparison.compare` measures every method on every seed;
:func:`summarize` turns its rows into a :class:`Summary`: per-seed values, a Student t
interval per method and metric (:func:`snnkit.stats.mean_interval`), means for the table
and the Pareto fronts, and :func:`conclusion` writes the closing text from it, with every
accuracy difference paired by seed (:func:`snnkit.stats.paired_interval`)::

    summary = summarize(result.rows)
    summary.frame()                                        # the table a reader sees
    floor = summary.floor(budget_points=2.0)               # dense accuracy minus 2 points
    conclusion(summary, budget_points=2.0, intro="On binary MNIST")   # markdown text
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..claims import REPRODUCED, Claim, accuracy_ceiling
from ..stats import Interval, mean_interval, paired_interval, paired_ratios
from .pareto import cheapest_within, pareto_front

__all__ = ["COSTS", "LOG_COSTS", "METRICS", "PAPER_OF", "SCORES", "Summary", "conclusion", "format_cost", "paper_claims",
           "summarize"]

#: The numbers of a method's row that are summarized over seeds.
METRICS: tuple[str, ...] = ("accuracy", "compression", "T", "spikes_per_inference", "energy_compute_uj",
                            "energy_memory_uj", "size_bits")

#: The costs of the Pareto fronts (lower is better), with their axis labels.
COSTS: dict[str, str] = {
    "energy_compute_uj": "compute energy [uJ per image, 45 nm]",
    "energy_memory_uj": "memory-inclusive energy [uJ per image]",
    "size_bits": "stored weights [bits, index included]",
    "T": "latency [time steps]",
    "spikes_per_inference": "spikes per image",
}

#: The costs drawn on a logarithmic axis.
LOG_COSTS: frozenset[str] = frozenset({"energy_compute_uj", "energy_memory_uj", "size_bits", "spikes_per_inference"})

#: The scores (higher is better), with their axis labels.
SCORES: dict[str, str] = {"accuracy": "test accuracy [fraction]", "compression": "compression [x fewer weights]"}

_COLUMNS = {"accuracy": "accuracy", "compression": "compression [x]", "T": "T", "spikes_per_inference": "spikes / image",
            "energy_compute_uj": "compute energy [uJ]", "energy_memory_uj": "memory-incl. energy [uJ]",
            "size_bits": "size [kB]"}


def format_cost(value: float, cost: str) -> str:
    """A cost for a reader, with its unit: ``0.076 uJ``, ``2.70 uJ``, ``13.2 kB`` (from
    bits), ``T = 5``, ``1520 spikes``.

    Raises:
        ValueError: a cost not in :data:`COSTS`.
    """
    if cost == "energy_compute_uj":
        return f"{value:.3f} uJ"
    if cost == "energy_memory_uj":
        return f"{value:.2f} uJ"
    if cost == "size_bits":
        return f"{value / 8e3:.1f} kB"
    if cost == "T":
        return f"T = {value:.3g}"
    if cost == "spikes_per_inference":
        return f"{value:.0f} spikes"
    raise ValueError(f"cost={cost!r}: expected one of {', '.join(COSTS)}")


@dataclass
class Summary:
    """Per-seed rows of every method, summarized.

    Attributes:
        by_seed: ``{method: {metric: [value per seed]}}``, seeds in the same order for
            every method (so that differences pair by seed).
        intervals: ``{method: {metric: Interval}}`` over the seeds.
        extra: ``{method: {key: value}}`` of the first seed's non-numeric columns
            (``weight_bits``, ``storage_format``).
    """

    by_seed: dict[str, dict[str, list[float]]]
    intervals: dict[str, dict[str, Interval]]
    extra: dict[str, dict[str, Any]]

    @property
    def names(self) -> list[str]:
        """The methods, in the rows' order."""
        return list(self.by_seed)

    @property
    def seeds(self) -> int:
        """How many seeds each method ran (the first method's accuracy count)."""
        return len(next(iter(self.by_seed.values()))["accuracy"])

    @property
    def table(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: mean over the seeds}}``."""
        return {n: {m: iv.mean for m, iv in ivs.items()} for n, ivs in self.intervals.items()}

    @property
    def spread(self) -> dict[str, dict[str, tuple[float, float]]]:
        """``{method: {metric: (low, high)}}`` of the 95 % intervals (empty with one seed)."""
        return {n: {m: (iv.low, iv.high) for m, iv in ivs.items() if iv.has_interval}
                for n, ivs in self.intervals.items()}

    def floor(self, budget_points: float, reference: str = "dense") -> float:
        """The reference's mean accuracy minus ``budget_points`` accuracy points."""
        return self.table[reference]["accuracy"] - budget_points / 100

    def winners(self, floor: float, among: Sequence[str]) -> dict[str, str | None]:
        """``{cost: the cheapest method of among at or above floor (None: none)}``."""
        return {c: cheapest_within(self.table, c, floor, among=list(among)) for c in COSTS}

    def fronts(self, among: Sequence[str]) -> dict[str, list[str]]:
        """``{cost: the methods of among on the accuracy-cost Pareto front, cheapest first}``."""
        names, t = list(among), self.table
        return {c: [names[i] for i in pareto_front([t[n][c] for n in names], [t[n]["accuracy"] for n in names])]
                for c in COSTS}

    def accuracy_difference(self, a: str, b: str) -> Interval:
        """``a - b`` in accuracy points, paired by seed, with its interval."""
        return paired_interval(self.by_seed[a]["accuracy"], self.by_seed[b]["accuracy"]).scaled(100)

    def ratio(self, a: str, b: str, metric: str) -> Interval:
        """``a / b`` of ``metric``, paired by seed, with its interval."""
        return mean_interval(paired_ratios(self.by_seed[a][metric], self.by_seed[b][metric]))

    def frame(self) -> Any:
        """The table a reader sees: one row per method, means rounded with units, the
        accuracy with its interval over the seeds (or "one run, no interval"), sizes in kB."""
        import pandas as pd

        rows = {}
        for n, ivs in self.intervals.items():
            acc = ivs["accuracy"]
            row = {"accuracy": f"{acc.mean:.3f}",
                   "accuracy 95% interval": acc.bounds_text(3) if acc.has_interval else "one run, no interval"}
            for m in METRICS[1:]:
                v = ivs[m].mean
                row[_COLUMNS[m]] = (f"{v / 8e3:.1f}" if m == "size_bits" else f"{v:.3f}" if m == "energy_compute_uj"
                                    else f"{v:.0f}" if m == "spikes_per_inference" else f"{v:.2f}" if m != "T"
                                    else f"{v:.3g}")
            row.update({"weight bits": str(self.extra[n].get("weight_bits", "")),
                        "storage": str(self.extra[n].get("storage_format", ""))})
            rows[n] = row
        return pd.DataFrame(rows).T


def summarize(rows_by_seed: Mapping[str, Sequence[Mapping[str, Any]]],
              metrics: Sequence[str] = METRICS) -> Summary:
    """Summarize ``{method: [row of each seed]}`` (the rows of
    :func:`~snnkit.compress.comparison.method_row`).

    Raises:
        ValueError: no method, methods with different numbers of seeds, or a row without a
            metric.
    """
    if not rows_by_seed:
        raise ValueError("rows_by_seed={}: expected at least one method")
    counts = {n: len(rows) for n, rows in rows_by_seed.items()}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise ValueError(f"seeds per method {counts}: expected the same number (>= 1) for every method, "
                         "so that differences pair by seed")
    by_seed: dict[str, dict[str, list[float]]] = {}
    for n, rows in rows_by_seed.items():
        for m in metrics:
            if any(m not in r for r in rows):
                raise ValueError(f"a row of {n!r} has no {m!r}; expected the metrics {list(metrics)}")
        by_seed[n] = {m: [float(r[m]) for r in rows] for m in metrics}
    intervals = {n: {m: mean_interval(v) for m, v in vals.items()} for n, vals in by_seed.items()}
    extra = {n: {k: rows[0][k] for k in ("weight_bits", "storage_format") if k in rows[0]}
             for n, rows in rows_by_seed.items()}
    return Summary(by_seed, intervals, extra)


def _difference_text(summary: Summary, a: str, b: str) -> str:
    iv = summary.accuracy_difference(a, b)
    return iv.format(1, "points", signed=True)


def conclusion(summary: Summary, budget_points: float, *, intro: str, reference: str = "dense",
               among: Sequence[str] | None = None, verdicts: Sequence[Any] = ()) -> str:
    """The closing text, in markdown, written from the summary.

    Args:
        summary: the methods' numbers over seeds.
        budget_points: accuracy points below ``reference`` a method may fall and still
            count as within budget.
        intro: the opening words (the data, e.g. ``"On binary MNIST"``).
        reference: the uncompressed entry.
        among: the compressed methods (default: every method but ``reference``).
        verdicts: :class:`snnkit.claims.Verdict` objects; those not reproduced are listed.

    One bullet names the most accurate compressed method, one per cost of :data:`COSTS`
    but spikes the cheapest method within budget (its accuracy difference from the
    reference paired by seed) and the Pareto front; one compares memory-inclusive with
    compute energy; then the claims that did not carry over.
    """
    names = [n for n in summary.names if n != reference] if among is None else list(among)
    if not names:
        raise ValueError(f"among={among!r}: expected at least one compressed method")
    t, floor = summary.table, summary.floor(budget_points, reference)
    winners, fronts = summary.winners(floor, names), summary.fronts(names)
    lines = [f"{intro}, from one common network ({summary.seeds} seed{'s' if summary.seeds > 1 else ''}; "
             f"{reference} {t[reference]['accuracy']:.3f}), allowing {budget_points:g} accuracy points below "
             f"{reference} (floor {floor:.3f}):", ""]
    best = max(names, key=lambda n: t[n]["accuracy"])
    lines.append(f"- **Most accurate** compressed network: `{best}` ({t[best]['accuracy']:.3f}, "
                 f"{t[best]['compression']:.1f}x fewer weights; {_difference_text(summary, best, reference)} "
                 f"against {reference}).")
    for cost in ("energy_compute_uj", "energy_memory_uj", "size_bits", "T"):
        w = winners[cost]
        cheapest = min(names, key=lambda n: (t[n][cost], -t[n]["accuracy"]))
        line = f"- **{COSTS[cost].split(' [')[0].capitalize()}**: "
        if w is None:
            line += (f"no compressed method stays within the budget; cheapest overall `{cheapest}` "
                     f"({format_cost(t[cheapest][cost], cost)}, accuracy {t[cheapest]['accuracy']:.3f})")
        else:
            line += (f"`{w}` wins within the budget ({format_cost(t[w][cost], cost)} against "
                     f"{format_cost(t[reference][cost], cost)} {reference}; accuracy {t[w]['accuracy']:.3f}, "
                     f"{_difference_text(summary, w, reference)})")
            if cheapest != w:
                line += (f"; `{cheapest}` is cheaper still ({format_cost(t[cheapest][cost], cost)}) but falls to "
                         f"{t[cheapest]['accuracy']:.3f}")
        lines.append(line + f". Pareto front: {', '.join(f'`{n}`' for n in fronts[cost])}.")
    every = [n for n in summary.names]
    ratio = min(t[n]["energy_memory_uj"] / t[n]["energy_compute_uj"] for n in every)
    by_memory = sorted(names, key=lambda n: t[n]["energy_memory_uj"])[:3]
    by_compute = sorted(names, key=lambda n: t[n]["energy_compute_uj"])[:3]
    bits = {n: summary.extra[n].get("weight_bits", 32) for n in names}
    lines.append(f"- On the accelerator model every network spends at least {ratio:.0f}x its 45 nm compute energy "
                 f"on memory and arithmetic together. Its three cheapest are "
                 f"{', '.join(f'`{n}` ({bits[n]} bits)' for n in by_memory)}; by compute energy alone the three "
                 f"cheapest are {', '.join(f'`{n}`' for n in by_compute)}.")
    if verdicts:
        missed = [v for v in verdicts if v.outcome != REPRODUCED]
        lines += ["", "Where the papers' claims did not carry over to this setting:" if missed else
                  "Every claim in the table held on this data."]
        lines += [f"- paper {v.claim.paper}: {v.claim.text}: {v.here} ({v.label})." for v in missed]
    return "\n".join(lines)


#: The method each paper contributes, with the paper's label in the claims table.
PAPER_OF: dict[str, str] = {"pca": "1 (PCA)", "attention": "2 (attention)", "duq": "3 (DuQ)",
                            "rescaw-svs": "4 (QP-SNN)", "lamp-kl": "5 (LAMP + KL)"}

_POINTS = {"scale": 100, "unit": "points"}


def paper_claims(summary: Summary, *, sparsity: float, bits: int, pca_threshold: float, svs_keep: float,
                 timesteps: int, test_size: int) -> list[tuple[Claim, list[float], list[float] | None, str | None]]:
    """Each paper's claim as it reads on common ground, with its per-seed evidence.

    Args:
        summary: the comparison over seeds (entries of
            :data:`~snnkit.compress.comparison.COMPARED`).
        sparsity, bits, pca_threshold, svs_keep: the operating point (for the claims' text).
        timesteps: the common network's T (the KL rule's claim: it shortens T).
        test_size: test images; a dense mean accuracy at or above
            :func:`~snnkit.claims.accuracy_ceiling` makes the within-1-point claims
            "not testable here".

    Returns:
        ``(claim, values, baseline, untestable)`` tuples for
        :meth:`snnkit.notebook.config.Recorder.claim`, each paper's claims together:
        every method within 1 point of dense (paired by seed), PCA beating random channels
        of the same count, attention-guided firing fewer spikes than dense, a dense
        ``bits``-bit net needing less memory-inclusive energy than a pruned 32-bit one, and
        the KL rule shortening T.
    """
    acc, bs, t = ({n: v["accuracy"] for n, v in summary.by_seed.items()}, summary.by_seed, summary.table)
    pct = f"{100 * sparsity:g} %"
    ceiling = accuracy_ceiling(test_size)
    dense = t["dense"]["accuracy"]
    at_ceiling = (f"dense at the data's ceiling: mean accuracy {dense:.3f} >= {ceiling:.3f}"
                  if dense >= ceiling else None)
    within = {
        "pca": f"PCA widths at {pca_threshold:g} of the variance: {t['pca']['compression']:.1f}x fewer weights "
               "within 1 point of dense",
        "attention": f"{t['attention']['compression']:.1f}x compression with at most 1 point lost",
        "duq": f"ternary and {pct} pruned within 1 point of full precision" if bits == 2 else
               f"{bits}-bit and {pct} pruned within 1 point of full precision",
        "rescaw-svs": f"{bits}-bit ReScaW with {100 * svs_keep:g} % of the channels (SVS) within 1 point of full precision",
        "lamp-kl": f"LAMP at {pct} and the chosen T within 1 point of dense",
    }
    out: list[tuple[Claim, list[float], list[float] | None, str | None]] = [
        (Claim.not_worse(f"{n.replace('-', '_')}_within_1", paper=PAPER_OF[n], text=text, a=n, b="dense",
                         margin=1.0, paper_value="within 1 point", **_POINTS), acc[n], acc["dense"], at_ceiling)
        for n, text in within.items()]
    kl_cut = [timesteps - x for x in bs["lamp-kl"]["T"]]
    out += [
        (Claim.better("pca_vs_random", paper=PAPER_OF["pca"], text="PCA widths (largest-L1 filters kept) beat random "
                      "channels of the same count", a="pca", b="random", paper_value="-", **_POINTS),
         acc["pca"], acc["random"], None),
        (Claim.better("attention_fewer_spikes", paper=PAPER_OF["attention"], text="fewer spikes per image than the "
                      "dense network", a="attention", b="dense", higher_is_better=False, unit="spikes",
                      paper_value="fewer"),
         bs["attention"]["spikes_per_inference"], bs["dense"]["spikes_per_inference"], None),
        (Claim.better("ternary_less_memory_energy", paper=PAPER_OF["duq"], text=f"a dense {bits}-bit net (uniform) "
                      f"needs less memory-inclusive energy than a {pct}-pruned 32-bit one (lamp-kl)", a="uniform",
                      b="lamp-kl", higher_is_better=False, unit="uJ", paper_value="1.46x less"),
         bs["uniform"]["energy_memory_uj"], bs["lamp-kl"]["energy_memory_uj"], None),
        (Claim.at_least("kl_shortens_t", paper=PAPER_OF["lamp-kl"], text=f"the KL rule shortens T (of {timesteps})",
                        target=1, unit="steps", paper_value="T halved"), kl_cut, None, None),
    ]
    return sorted(out, key=lambda e: e[0].paper)  # stable: each paper's claims together
