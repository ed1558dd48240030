"""A paper's claims, declared once and decided by one rule from per-seed values.

A :class:`Claim` says what is compared, in which direction, against which target or
margin, in which units, and what the paper reported. A notebook measures the claim's
values on each seed and records them (``rec.claim(CLAIM, values, baseline=...)``); the
notebook's verdict table, ``python -m snnkit report`` and the README all decide it with
:func:`decide`, so they cannot disagree.

What is compared:

* a **quantity** (``at_least`` / ``at_most`` a target): the decided sample is the per-seed
  values themselves, times ``scale`` (e.g. a compression ratio, at least 10x);
* **A against B, paired by seed** (``better`` / ``not_worse``, with a margin): the decided
  sample is ``scale * (a - b)`` seed by seed (B may be one value shared by every seed, a
  reference trained once). With ``higher_is_better=False`` (energy, spikes) the signs
  flip.

The verdict rule
----------------
Let ``x_1 .. x_n`` be the decided sample and ``[lo, hi]`` its two-sided 95% Student t
interval (:func:`snnkit.stats.mean_interval`). Each claim is one side of a threshold ``t``:

=========================  ==============  =====================================
direction                  holds when      ``t``
=========================  ==============  =====================================
``at_least``               x >= t          the target
``at_most``                x <= t          the target
``better`` (higher)        x > t           ``margin`` (default 0)
``better`` (lower)         x < t           ``-margin``
``not_worse`` (higher)     x >= t          ``-margin``
``not_worse`` (lower)      x <= t          ``margin``
=========================  ==============  =====================================

1. **not testable here** if a precondition fails: the reference (``reference=``, else the
   baseline B of a paired claim) sits at the data's ceiling, i.e. its mean over seeds is
   at least the claim's ``ceiling`` (:func:`accuracy_ceiling`: 0.99, or one test image
   short of 1.0 when that is lower), so that "no loss" cannot be told from saturation;
   or the notebook says why the claim cannot be measured (``untestable="..."``).
2. **reproduced** if the whole interval is on the claim's side of ``t`` (``lo >= t`` for
   a lower bound; ``lo > t`` for a strict one), **not reproduced** if the whole interval
   is on the other side, **inconclusive** if the interval holds ``t``.
3. With **one** value there is no interval: the verdict is **inconclusive (one run)**,
   except for a claim declared ``exact=True``, whose value is fixed by the protocol and
   not by the seed (a T that the schedule sets, the parameter count of a network cut to
   fixed widths): its one value is the interval ``[x, x]``. So is every sample whose
   values are all equal.

The verdict names its rule's inputs (:class:`Verdict`: the interval, the threshold and
the reason), and :func:`claims_table` shows verdicts for a reader without cutting any text.

Example (a notebook's claims cell)::

    from snnkit.claims import Claim, accuracy_ceiling, claims_table

    BEATS_MAGNITUDE = Claim.better(
        "attention_vs_magnitude", paper="2", a="attention-guided", b="magnitude pruning",
        text="attention guidance beats magnitude pruning at the same density",
        quantity="SNN test accuracy", scale=100, unit="points", paper_value="better")
    verdicts = [rec.claim(BEATS_MAGNITUDE, values=attention_acc, baseline=magnitude_acc,
                          seeds=SEEDS)]
    claims_table(verdicts)
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .stats import CONFIDENCE, Interval, PerSeed, decimals_for, format_number, mean_interval, pair_by_seed

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable here"
OUTCOMES = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)
"""The four verdicts, and the only ones."""

AT_LEAST, AT_MOST, BETTER, NOT_WORSE = "at least", "at most", "better", "not worse"
DIRECTIONS = (AT_LEAST, AT_MOST, BETTER, NOT_WORSE)

CEILING = 0.99
"""Accuracy at or above which a reference network is taken to sit at the data's ceiling."""


def accuracy_ceiling(test_size: int | None = None, limit: float = CEILING) -> float:
    """The accuracy from which a reference sits at the data's ceiling: ``limit``, or one
    test image short of 1.0 (``1 - 1/test_size``) when that is lower.

    ``accuracy_ceiling(359)`` = 0.99; ``accuracy_ceiling(50)`` = 0.98.

    Raises:
        ValueError: a test size below 1 or a limit outside (0, 1].
    """
    if not 0 < limit <= 1:
        raise ValueError(f"limit={limit!r}: expected an accuracy in (0, 1]")
    if test_size is None:
        return limit
    if isinstance(test_size, bool) or not isinstance(test_size, int) or test_size < 1:
        raise ValueError(f"test_size={test_size!r}: expected the number of test samples, an integer >= 1")
    return min(limit, 1.0 - 1.0 / test_size)


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, declared once.

    Build one with :meth:`at_least`, :meth:`at_most`, :meth:`better` or
    :meth:`not_worse`; the fields are:

    Attributes:
        key: its name in ``results.json`` (``results["claims"][key]``), without ``.``.
        paper: which paper (``"1"`` .. ``"5"``; the comparison notebook adds the method,
            ``"1 (PCA)"``), as the report's first column.
        text: the claim as a reader reads it.
        direction: one of :data:`DIRECTIONS`.
        target: the target of ``at_least``/``at_most``, or the margin (>= 0) of
            ``better``/``not_worse``, in the claim's units (after ``scale``).
        unit: of the decided numbers after ``scale``: ``"x"``, ``"%"``, ``"points"``,
            ``"uJ"``, ``""``.
        paper_value: the paper's number, as text (``"10-14x"``, ``"1.46x"``).
        quantity: what one value is (``"compression"``, ``"SNN test accuracy"``).
        a, b: the two sides of a paired claim (``"ternary"``, ``"full precision"``).
        scale: the values are multiplied by it before deciding (100: fractions to points).
        higher_is_better: for ``better``/``not_worse``: whether larger values of the
            quantity are better (accuracy) or worse (energy, spikes).
        ceiling: the precondition: not testable when the reference's mean (raw values,
            before ``scale``) is at or above it; None: no ceiling.
        exact: the value is fixed by the protocol, not by the seed, so one run decides.
        decimals: digits shown (None: about three significant digits).
    """

    key: str
    paper: str
    text: str
    direction: str
    target: float = 0.0
    unit: str = ""
    paper_value: str = "-"
    quantity: str = ""
    a: str = ""
    b: str = ""
    scale: float = 1.0
    higher_is_better: bool = True
    ceiling: float | None = None
    exact: bool = False
    decimals: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key or any(c in self.key for c in "./ "):
            raise ValueError(f"key={self.key!r}: expected a non-empty name without '.', '/' or spaces "
                             "(it names the claim in results.json)")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction={self.direction!r}: expected one of {', '.join(DIRECTIONS)}")
        if not isinstance(self.target, (int, float)) or isinstance(self.target, bool) or not math.isfinite(self.target):
            raise ValueError(f"{self.key}: target={self.target!r}: expected a finite number")
        if self.paired:
            if self.target < 0:
                raise ValueError(f"{self.key}: margin={self.target!r}: expected a margin >= 0 (the direction "
                                 "says which side is better)")
            if not self.a or not self.b:
                raise ValueError(f"{self.key}: a {self.direction!r} claim names both sides: a={self.a!r}, b={self.b!r}")
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool) or not self.scale > 0:
            raise ValueError(f"{self.key}: scale={self.scale!r}: expected a number > 0")
        if self.ceiling is not None and not 0 < self.ceiling <= 1:
            raise ValueError(f"{self.key}: ceiling={self.ceiling!r}: expected an accuracy in (0, 1] or None")

    # ----------------------------------------------------------------- constructors

    @classmethod
    def at_least(cls, key: str, *, paper: str, text: str, target: float, **fields: Any) -> Claim:
        """A quantity that must reach ``target``: ``Claim.at_least("compression", paper="1",
        text="10-14x fewer parameters", target=10, unit="x", paper_value="10-14x")``."""
        return cls(key, paper, text, AT_LEAST, target, **fields)

    @classmethod
    def at_most(cls, key: str, *, paper: str, text: str, target: float, **fields: Any) -> Claim:
        """A quantity that must stay at or below ``target`` (a drop, a fraction of T)."""
        return cls(key, paper, text, AT_MOST, target, **fields)

    @classmethod
    def better(cls, key: str, *, paper: str, text: str, a: str, b: str, margin: float = 0.0,
               **fields: Any) -> Claim:
        """A beats B by more than ``margin``, seed by seed (``higher_is_better=False``:
        A is lower than B by more than ``margin``)."""
        return cls(key, paper, text, BETTER, margin, a=a, b=b, **fields)

    @classmethod
    def not_worse(cls, key: str, *, paper: str, text: str, a: str, b: str, margin: float = 0.0,
                  **fields: Any) -> Claim:
        """A is at most ``margin`` worse than B, seed by seed (iso-accuracy: ternary within
        1 point of full precision)."""
        return cls(key, paper, text, NOT_WORSE, margin, a=a, b=b, **fields)

    # ----------------------------------------------------------------------- rule

    @property
    def paired(self) -> bool:
        """Whether the claim compares A against B (``better``/``not_worse``)."""
        return self.direction in (BETTER, NOT_WORSE)

    @property
    def threshold(self) -> float:
        """``t`` of the rule (module docstring), in the claim's units."""
        if self.direction in (AT_LEAST, AT_MOST):
            return float(self.target)
        sign = 1.0 if self.higher_is_better else -1.0
        t = sign * self.target if self.direction == BETTER else -sign * self.target
        return t + 0.0  # no -0

    @property
    def threshold_text(self) -> str:
        """``t`` for a reader, as declared: ``10x``, ``+0 points``, ``-1 points``, ``0.6``."""
        t = self.threshold
        number = f"{t:+g}" if self.paired else f"{t:g}"
        if not self.unit:
            return number
        return f"{number}{self.unit}" if self.unit in ("x", "%") else f"{number} {self.unit}"

    @property
    def above(self) -> bool:
        """Whether the claim holds above ``threshold`` (else below it)."""
        if self.direction == AT_LEAST:
            return True
        if self.direction == AT_MOST:
            return False
        return self.higher_is_better

    @property
    def strict(self) -> bool:
        """Whether reaching ``threshold`` exactly is not enough (``better``)."""
        return self.direction == BETTER

    def pairs(self, values: PerSeed, baseline: PerSeed | float | None = None) -> list[tuple[float, float]]:
        """``(a, b)`` seed by seed for a paired claim (:func:`snnkit.stats.pair_by_seed`),
        raw values; ``(value, nan)`` for a quantity.

        Raises:
            ValueError: a paired claim without a baseline, or a quantity with one.
        """
        if self.paired:
            if baseline is None:
                raise ValueError(f"claim {self.key!r} compares {self.a} against {self.b}: give the "
                                 f"per-seed values of {self.b} as baseline=")
            return [(x, y) for _, x, y in pair_by_seed(values, baseline)]
        if baseline is not None:
            raise ValueError(f"claim {self.key!r} is about one quantity ({self.direction} {self.target:g}); "
                             "it takes no baseline")
        items = values.values() if isinstance(values, Mapping) else values
        return [(float(v), math.nan) for v in items if v is not None and not math.isnan(float(v))]

    def sample(self, values: PerSeed, baseline: PerSeed | float | None = None) -> list[float]:
        """The decided numbers: ``scale * values``, or ``scale * (values - baseline)`` seed
        by seed for a paired claim.

        Example: ``Claim.better("k", paper="1", text="t", a="A", b="B", scale=100)
        .sample([0.9, 0.8], [0.85, 0.8])`` -> ``[5.0, 0.0]`` (to float rounding).
        """
        return [self.scale * (a - b if self.paired else a) for a, b in self.pairs(values, baseline)]

    def to_dict(self) -> dict[str, Any]:
        """The declaration as JSON-ready data (as stored in results.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Claim:
        """The inverse of :meth:`to_dict`; unknown fields are an error naming them."""
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"claim declaration has unknown field(s) {unknown}; expected {sorted(names)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class Evidence:
    """What one run measured for a claim.

    Attributes:
        values: per-seed values of the quantity, or of A (raw, before ``scale``).
        baseline: per-seed values of B for a paired claim (or one shared value).
        reference: per-seed values the ceiling is checked on (default: the baseline).
        seeds: the seeds of ``values``, for the record (labels only).
        untestable: why the run could not measure the claim (None: it could).
    """

    values: list[float]
    baseline: list[float] | None = None
    reference: list[float] | None = None
    seeds: list[Any] | None = None
    untestable: str | None = None

    @classmethod
    def of(cls, values: PerSeed | None, baseline: PerSeed | float | None = None,
           reference: PerSeed | float | None = None, seeds: Sequence[Any] | None = None,
           untestable: str | None = None) -> Evidence:
        """Normalise what a notebook passes: mappings seed -> value give their seeds,
        single numbers become lists, NumPy and torch scalars become floats.

        Raises:
            ValueError: ``seeds`` whose length differs from ``values``'.
        """
        def as_list(x: PerSeed | float | None) -> list[float] | None:
            if x is None:
                return None
            if isinstance(x, Mapping):
                return [_number(v) for v in x.values()]
            if isinstance(x, (int, float)) or hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
                return [_number(x)]
            return [_number(v) for v in x]

        if seeds is None and isinstance(values, Mapping):
            seeds = list(values)
        if isinstance(values, Mapping) and isinstance(baseline, Mapping):
            common = [s for s in values if s in baseline]
            values = {s: values[s] for s in common}
            baseline = {s: baseline[s] for s in common}
            seeds = common
        vals = as_list(values) or []
        if seeds is not None:
            seeds = [_jsonable_seed(s) for s in seeds]
            if len(seeds) != len(vals):
                raise ValueError(f"seeds={seeds!r}: {len(seeds)} seed(s) for {len(vals)} value(s); expected one "
                                 "seed per value")
        return cls(vals, as_list(baseline), as_list(reference), seeds, untestable)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with NaN as None."""
        def clean(x: list[float] | None) -> list[float | None] | None:
            return None if x is None else [None if v is None or math.isnan(v) else v for v in x]
        return {"values": clean(self.values), "baseline": clean(self.baseline),
                "reference": clean(self.reference), "seeds": self.seeds, "untestable": self.untestable}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """The inverse of :meth:`to_dict`."""
        def floats(x: Any) -> list[float] | None:
            return None if x is None else [math.nan if v is None else float(v) for v in x]
        return cls(floats(data.get("values")) or [], floats(data.get("baseline")), floats(data.get("reference")),
                   data.get("seeds"), data.get("untestable"))


def _number(value: Any) -> float:
    if hasattr(value, "item"):
        value = value.item()
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r}: expected a number (one per seed)")
    return float(value)


def _jsonable_seed(seed: Any) -> Any:
    if hasattr(seed, "item"):
        seed = seed.item()
    return seed if isinstance(seed, (int, float, str)) else str(seed)


@dataclass(frozen=True)
class Verdict:
    """A claim decided from its evidence.

    Attributes:
        claim: the declaration.
        outcome: one of :data:`OUTCOMES`.
        interval: mean and t interval of the decided sample (after ``scale``).
        reason: why, in words (``"the whole interval is at or above 10x"``, ``"one run:
            9.60x against 10x, no interval"``, ``"full precision at the data's ceiling: mean
            accuracy 1.000 >= 0.990"``).
        evidence: the runs it was decided from (one per notebook run; several when pooled).
        mean_a, mean_b: for a paired claim, the means of A and B (raw values).
    """

    claim: Claim
    outcome: str
    interval: Interval
    reason: str
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    mean_a: float = math.nan
    mean_b: float = math.nan

    @property
    def label(self) -> str:
        """The verdict as the table shows it: ``inconclusive (one run)`` with one value,
        ``not testable here: WHY``; the other outcomes print as they are."""
        if self.outcome == INCONCLUSIVE and self.interval.n == 1:
            return f"{INCONCLUSIVE} (one run)"
        if self.outcome == NOT_TESTABLE:
            return f"{NOT_TESTABLE}: {self.reason}"
        return self.outcome

    @property
    def here(self) -> str:
        """The measured mean with its unit; for a paired claim with A and B's means
        (``-1.67 points (attention-guided 0.955, dense SNN 0.972)``)."""
        c, iv = self.claim, self.interval
        if iv.n == 0:
            return "not measured"
        d = c.decimals if c.decimals is not None else decimals_for(iv.mean, iv.low, iv.high)
        text = format_number(iv.mean, d, c.unit, signed=c.paired)
        if c.paired and not math.isnan(self.mean_a):
            d_ab = max(decimals_for(self.mean_a), decimals_for(self.mean_b))
            text += f" ({c.a} {format_number(self.mean_a, d_ab)}, {c.b} {format_number(self.mean_b, d_ab)})"
        return text

    @property
    def interval_text(self) -> str:
        """``0.47 to 2.87``, ``7.5-9.6``, ``one run, no interval``, ``exact`` (a protocol
        value), or ``no values``."""
        c, iv = self.claim, self.interval
        if iv.n == 1 and c.exact:
            return "exact (set by the protocol)"
        d = c.decimals if c.decimals is not None else decimals_for(iv.mean, iv.low, iv.high)
        return iv.bounds_text(d, signed=c.paired)

    @property
    def seeds(self) -> int:
        """How many values decided it."""
        return self.interval.n

    def row(self) -> dict[str, str]:
        """The claim as one row of :func:`table` and the report."""
        return {"paper": self.claim.paper, "claim": self.claim.text, "paper's number": self.claim.paper_value,
                "here (mean)": self.here, "95% interval": self.interval_text, "seeds": str(self.seeds),
                "verdict": self.label}

    def to_dict(self) -> dict[str, Any]:
        """What results.json keeps: the declaration, the evidence and the decision."""
        iv = self.interval
        if len(self.evidence) != 1:
            raise ValueError(f"claim {self.claim.key!r}: a recorded verdict holds one run's evidence, "
                             f"this one pools {len(self.evidence)}")
        nan_free = lambda x: None if x is None or math.isnan(x) else x  # noqa: E731
        return {"claim": self.claim.to_dict(), **self.evidence[0].to_dict(),
                "verdict": self.label, "outcome": self.outcome, "reason": self.reason,
                "n": iv.n, "mean": nan_free(iv.mean), "low": nan_free(iv.low), "high": nan_free(iv.high)}

    def __str__(self) -> str:
        why = "" if self.outcome == NOT_TESTABLE else f" ({self.reason})"
        return f"{self.claim.text}: {self.here}, {self.interval_text}; {self.label}{why}"


def decide(claim: Claim, values: PerSeed | None = None, *, baseline: PerSeed | float | None = None,
           reference: PerSeed | float | None = None, seeds: Sequence[Any] | None = None,
           untestable: str | None = None, confidence: float = CONFIDENCE) -> Verdict:
    """Decide ``claim`` from one run's per-seed values by the rule of the module docstring.

    Args:
        claim: the declaration.
        values: per-seed values of the quantity (or of A), raw (``scale`` is applied here).
        baseline: per-seed values of B (paired claims only), or one shared value.
        reference: what the ceiling is checked on (default: the baseline).
        seeds: the seeds of ``values`` (labels for the record).
        untestable: why this run cannot measure the claim; the verdict is then
            :data:`NOT_TESTABLE` (``values`` may be None).
        confidence: the interval's level.

    Returns:
        The :class:`Verdict`.

    Raises:
        ValueError: no values while the claim is testable, a baseline missing or
            unexpected, or a ceiling with nothing to check it on.
    """
    evidence = Evidence.of(values if values is not None else [], baseline, reference, seeds, untestable)
    return decide_pooled(claim, [evidence], confidence)


def decide_pooled(claim: Claim, evidence: Sequence[Evidence], confidence: float = CONFIDENCE) -> Verdict:
    """Decide ``claim`` from several runs' evidence, pooled: the decided samples of the
    runs (each paired within its run) are concatenated, and so are the references.

    Raises:
        ValueError: as :func:`decide`.
    """
    evidence = tuple(evidence)
    pairs: list[tuple[float, float]] = []
    references: list[float] = []
    skipped = [e.untestable for e in evidence if e.untestable]
    for e in evidence:
        if e.untestable:
            continue
        pairs += claim.pairs(e.values, e.baseline)
        ref = e.reference if e.reference is not None else (e.baseline if claim.paired else None)
        references += [r for r in ref or [] if not math.isnan(r)]
    sample = [claim.scale * (a - b if claim.paired else a) for a, b in pairs]
    iv = mean_interval(sample, confidence)
    mean_a = math.fsum(a for a, _ in pairs) / len(pairs) if pairs and claim.paired else math.nan
    mean_b = math.fsum(b for _, b in pairs) / len(pairs) if pairs and claim.paired else math.nan
    note = (f" ({len(skipped)} run(s) could not measure it: {'; '.join(dict.fromkeys(skipped))})"
            if skipped else "")

    def verdict(outcome: str, reason: str) -> Verdict:
        return Verdict(claim, outcome, iv, reason + (note if outcome != NOT_TESTABLE else ""), evidence,
                       mean_a, mean_b)

    if skipped and not sample:
        return verdict(NOT_TESTABLE, "; ".join(dict.fromkeys(skipped)))
    if claim.ceiling is not None:
        if not references:
            raise ValueError(f"claim {claim.key!r} declares the ceiling {claim.ceiling:g}: give the reference "
                             "network's per-seed accuracy as reference= (or a baseline)")
        ref_mean = math.fsum(references) / len(references)
        if ref_mean >= claim.ceiling:
            who = claim.b or "the reference"
            return verdict(NOT_TESTABLE, f"{who} at the data's ceiling: mean accuracy {ref_mean:.3f} >= "
                                         f"{claim.ceiling:.3f}")
    if iv.n == 0:
        raise ValueError(f"claim {claim.key!r}: no values to decide it from; give its per-seed values, or "
                         "untestable='why' when this run cannot measure it")
    t = claim.threshold
    unit_t = claim.threshold_text
    if iv.n == 1 and not claim.exact:
        return verdict(INCONCLUSIVE, f"one run: {format_number(iv.mean, claim.decimals, claim.unit, signed=claim.paired)}"
                                     f" against {unit_t}, no interval")
    lo, hi = (iv.mean, iv.mean) if iv.n == 1 else (iv.low, iv.high)
    if claim.above:
        yes, no = (lo > t, hi <= t) if claim.strict else (lo >= t, hi < t)
        side, other = ("above", "at or below") if claim.strict else ("at or above", "below")
    else:
        yes, no = (hi < t, lo >= t) if claim.strict else (hi <= t, lo > t)
        side, other = ("below", "at or above") if claim.strict else ("at or below", "above")
    where = "the value" if iv.n == 1 else "every value" if lo == hi else "the whole interval"
    if yes:
        return verdict(REPRODUCED, f"{where} is {side} {unit_t}")
    if no:
        return verdict(NOT_REPRODUCED, f"{where} is {other} {unit_t}")
    return verdict(INCONCLUSIVE, f"the interval holds {unit_t}")


# ------------------------------------------------------------------------ display

COLUMNS = ("paper", "claim", "paper's number", "here (mean)", "95% interval", "seeds", "verdict")


class ClaimsTable:
    """Verdicts as a table for a reader: HTML in a notebook, markdown as text; no cell is
    cut short, whatever its length.

    Args:
        verdicts: the rows, in order.
        columns: which of :data:`COLUMNS` to show (default: all), plus any extra keys the
            rows carry (``setting``).
        rows: rows given directly as dicts (``snnkit report`` adds a ``setting`` column).
    """

    def __init__(self, verdicts: Iterable[Verdict] = (), columns: Sequence[str] | None = None,
                 rows: Iterable[Mapping[str, str]] | None = None) -> None:
        self.rows = [v.row() for v in verdicts] + [dict(r) for r in (rows or [])]
        self.columns = list(columns) if columns is not None else list(COLUMNS)

    def to_markdown(self) -> str:
        """A GitHub markdown table; ``|`` in a cell is escaped."""
        def cell(text: str) -> str:
            return str(text).replace("|", "\\|").replace("\n", " ")
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell(r.get(c, "")) for c in self.columns) + " |" for r in self.rows]
        return "\n".join(lines)

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame (strings)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(r.get(c, '')))}</td>"
                                        for c in self.columns) + "</tr>" for r in self.rows)
        return f"<table class='snnkit-claims'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return self.to_markdown()

    def __len__(self) -> int:
        return len(self.rows)


def claims_table(verdicts: Iterable[Verdict], columns: Sequence[str] | None = None) -> ClaimsTable:
    """The verdicts as a :class:`ClaimsTable` (the last line of a notebook's claims cell).

    The notebook's table has the columns of ``snnkit report``; ``columns`` picks some
    (e.g. without ``paper`` in a one-paper notebook).
    """
    return ClaimsTable(verdicts, columns)


def verdict_from_record(record: Mapping[str, Any]) -> Verdict:
    """Decide again a claim stored in results.json (``results["claims"][key]``) from its
    declaration and evidence: the same rule, so the same verdict.

    Raises:
        ValueError: a record without its declaration.
    """
    if "claim" not in record:
        raise ValueError(f"claim record {json.dumps(record)[:80]}...: no 'claim' declaration")
    claim = Claim.from_dict(record["claim"])
    return decide_pooled(claim, [Evidence.from_dict(record)])
