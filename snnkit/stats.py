"""Statistics over seeds: the mean with its Student t interval, paired differences, tables.

A number measured on one seed is one draw. Claims, sweeps and reports decide on the
spread of several draws, with one definition shared by all of them:

* :func:`mean_interval`: the mean of per-seed values and its two-sided Student t
  interval (95% by default), as an :class:`Interval` that prints for a reader
  (``0.930 (0.910-0.950), 5 seeds``; with one value ``0.930, one run, no interval``).
* :func:`paired_differences` / :func:`paired_ratios` / :func:`paired_interval`: A against
  B on the same seeds, so that the noise a seed puts into both cancels.
* :func:`summarize` and :func:`paired_difference`: the same statistics over a table with
  one row per run (a sweep's ``sweep.csv``), per grid point.

Example::

    >>> iv = mean_interval([0.91, 0.93, 0.95])
    >>> str(iv)
    '0.930 (0.880-0.980), 3 seeds'
    >>> str(paired_interval({0: 0.92, 1: 0.95}, {0: 0.90, 1: 0.91}).format(scale=100, unit="points", signed=True))
    '+3.0 points (-9.7 to +15.7), 2 seeds'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Union

CONFIDENCE = 0.95
"""The level of every interval unless a caller asks for another."""

PerSeed = Union[Mapping[Any, float], Sequence[float]]
"""Per-seed values: a mapping seed -> value, or a sequence in seed order."""


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def decimals_for(*values: float) -> int:
    """Decimals that show about three significant digits of the largest ``|value|``.

    ``decimals_for(0.955)`` = 3, ``decimals_for(1.67)`` = 2, ``decimals_for(12.2)`` = 1,
    ``decimals_for(1547.0)`` = 0, ``decimals_for(0.0082)`` = 4 (never more than 4);
    NaNs are ignored and all-zero or empty gives 2.
    """
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    largest = max(finite, default=0.0)
    if largest == 0:
        return 2
    return max(0, min(4, 2 - math.floor(math.log10(largest))))


def format_number(value: float, decimals: int | None = None, unit: str = "", *, signed: bool = False) -> str:
    """``value`` rounded for a reader, with its unit: ``8.5x``, ``-1.67 points``, ``19%``,
    ``0.955``; ``x`` and ``%`` attach to the number, other units follow a space.

    Args:
        value: the number (NaN prints as ``n/a``).
        decimals: digits after the point (None: :func:`decimals_for` the value).
        unit: appended as above; empty for none.
        signed: print ``+`` for positive numbers (differences).
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    d = decimals_for(value) if decimals is None else decimals
    text = f"{value:+.{d}f}" if signed else f"{value:.{d}f}"
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("x", "%") else f"{text} {unit}"


class Interval(NamedTuple):
    """Mean of a sample with its Student t confidence interval.

    Attributes:
        n: sample size (missing values dropped).
        mean: sample mean (NaN for n = 0).
        std: sample standard deviation with ``ddof=1`` (NaN for n < 2).
        low, high: the interval ``mean -/+ t_{(1+c)/2, n-1} * std / sqrt(n)``
            (NaN for n < 2: one run says nothing about the spread).
        confidence: the interval's level c.

    ``str(iv)`` is what a reader sees: ``0.930 (0.910-0.950), 5 seeds``, with a negative
    bound ``-0.53 (-1.55 to +0.49), 10 seeds``, with one value ``0.930, one run, no
    interval``; :meth:`format` adds a scale, a unit and a sign.
    """

    n: int
    mean: float
    std: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def has_interval(self) -> bool:
        """Whether there is an interval (two or more values)."""
        return self.n >= 2 and not math.isnan(self.low)

    def scaled(self, factor: float) -> Interval:
        """The same interval in other units (``scaled(100)``: fractions to points).

        A negative factor swaps the bounds so that ``low <= high`` still holds."""
        low, high = self.low * factor, self.high * factor
        if factor < 0:
            low, high = high, low
        return Interval(self.n, self.mean * factor, self.std * abs(factor), low, high, self.confidence)

    def bounds_text(self, decimals: int | None = None, *, signed: bool = False) -> str:
        """``0.910-0.950`` or ``-1.55 to +0.49``; ``one run, no interval`` for n = 1 and
        ``no values`` for n = 0."""
        if self.n == 0:
            return "no values"
        if not self.has_interval:
            return "one run, no interval"
        d = decimals_for(self.mean, self.low, self.high) if decimals is None else decimals
        negative = self.low < 0 or self.high < 0
        if negative or signed:
            return f"{self.low:+.{d}f} to {self.high:+.{d}f}"
        return f"{self.low:.{d}f}-{self.high:.{d}f}"

    def format(self, decimals: int | None = None, unit: str = "", *, scale: float = 1.0,
               signed: bool = False, runs: str = "seeds") -> str:
        """The interval for a reader: ``+1.30 points (+0.73 to +1.87), 6 seeds``.

        Args:
            decimals: digits after the point (None: about three significant digits of the
                largest of mean and bounds).
            unit: of the (scaled) numbers, after the mean (``x``, ``%``, ``points``, ``uJ``).
            scale: multiplies every number first (100: fractions to points).
            signed: ``+`` on positive numbers (for differences).
            runs: what the sample counts (``seeds``, ``runs``, ``nets``).
        """
        iv = self.scaled(scale) if scale != 1.0 else self
        if iv.n == 0:
            return "no values"
        d = decimals_for(iv.mean, iv.low, iv.high) if decimals is None else decimals
        head = format_number(iv.mean, d, unit, signed=signed)
        if not iv.has_interval:
            return f"{head}, one run, no interval"
        return f"{head} ({iv.bounds_text(d, signed=signed)}), {iv.n} {runs}"

    def __str__(self) -> str:
        return self.format()


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if not _is_missing(v) and not math.isnan(float(v))]


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student t quantile ``t_{(1+confidence)/2, df}`` (4.3027 for 95%, df 2)."""
    from scipy import stats as scipy_stats  # imported when first needed: the CLI starts without scipy

    return float(scipy_stats.t.ppf((1 + confidence) / 2, df))


def mean_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``values`` and its ``confidence`` Student t interval.

    Missing values (None, NaN) are dropped. Example: ``[1, 2, 3, 4]`` gives mean 2.5, std
    ``sqrt(5/3)`` = 1.2910 and, with ``t_{0.975, 3}`` = 3.1824, the interval 2.5 -/+ 2.0543.
    Every value equal gives a zero-width interval at that value.

    Raises:
        ValueError: ``confidence`` not in (0, 1).
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r}: expected a number in (0, 1)")
    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan, confidence)
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(1, mean, math.nan, math.nan, math.nan, confidence)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(confidence, n - 1) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half, confidence)


def pair_by_seed(a: PerSeed, b: PerSeed | float) -> list[tuple[Any, float, float]]:
    """``(seed, a, b)`` for every seed where both were measured.

    Args:
        a, b: per-seed values: both mappings seed -> value (paired on the seeds both
            hold; a sequence's seeds are its positions) or both sequences in the same
            seed order. ``b`` may also be one number, or a sequence of one, when B was
            measured once for every seed (a reference network trained once).

    Seeds where either value is missing (None, NaN) are dropped. Example:
    ``pair_by_seed({0: 0.9, 1: 0.8, 2: None}, {0: 0.8, 1: 0.7, 2: 0.6})`` ->
    ``[(0, 0.9, 0.8), (1, 0.8, 0.7)]``.

    Raises:
        ValueError: a mapping against a sequence, or sequences of different lengths.
    """
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        items = a.items() if isinstance(a, Mapping) else enumerate(a)
        return [(s, float(x), float(b)) for s, x in items if not _is_missing(x)]
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueError("a and b: expected both mappings seed -> value or both sequences in the same "
                         f"seed order, got {type(a).__name__} and {type(b).__name__}")
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping)
        return [(s, float(a[s]), float(b[s])) for s in a if s in b and not _is_missing(a[s]) and not _is_missing(b[s])]
    a_list, b_list = list(a), list(b)
    if len(b_list) == 1 and len(a_list) > 1:
        return [(i, float(x), float(b_list[0])) for i, x in enumerate(a_list)
                if not _is_missing(x) and not _is_missing(b_list[0])]
    if len(a_list) != len(b_list):
        raise ValueError(f"a has {len(a_list)} values and b {len(b_list)}: expected one value of each per seed "
                         "(or one value of b shared by every seed)")
    return [(i, float(x), float(y)) for i, (x, y) in enumerate(zip(a_list, b_list))
            if not _is_missing(x) and not _is_missing(y)]


def paired_differences(a: PerSeed, b: PerSeed | float) -> list[float]:
    """``a - b`` seed by seed, paired as in :func:`pair_by_seed`.

    Example: ``paired_differences([0.9, 0.8, 0.85], [0.8, 0.8, 0.75])`` -> ``[0.1, 0.0,
    0.1]`` (to float rounding).
    """
    return [x - y for _, x, y in pair_by_seed(a, b)]


def paired_ratios(a: PerSeed, b: PerSeed | float) -> list[float]:
    """``a / b`` seed by seed, paired as in :func:`pair_by_seed`.

    Example: ``paired_ratios({0: 2.0, 1: 3.0}, {0: 1.0, 1: 2.0})`` -> ``[2.0, 1.5]``.

    Raises:
        ValueError: as :func:`pair_by_seed`, or a zero in ``b`` (naming its seed).
    """
    out = []
    for seed, x, y in pair_by_seed(a, b):
        if y == 0:
            raise ValueError(f"b is 0 at seed {seed!r}: a ratio needs a non-zero denominator")
        out.append(x / y)
    return out


def paired_interval(a: PerSeed, b: PerSeed | float, confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``a - b`` over seeds and its Student t interval (a paired t interval).

    Example: a = [0.9, 0.8, 0.85], b = [0.8, 0.8, 0.75] give differences [0.1, 0, 0.1],
    mean 0.0667, std 0.0577 and, with ``t_{0.975, 2}`` = 4.3027, the interval
    [-0.0768, 0.2101]: no finding at three seeds.
    """
    return mean_interval(paired_differences(a, b), confidence)


# ------------------------------------------------------------------------- tables


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) or \
        (hasattr(x, "dtype") and getattr(x.dtype, "kind", "") in "iuf")


def numeric_columns(table: Any, exclude: Iterable[str] = ()) -> list[str]:
    """Columns of a DataFrame whose values are all numbers (missing allowed, booleans not)."""
    skip = set(exclude)
    cols = []
    for col in table.columns:
        if col in skip:
            continue
        values = [v for v in table[col].tolist() if not _is_missing(v)]
        if values and all(_is_number(v) for v in values):
            cols.append(col)
    return cols


def groups(table: Any, by: Sequence[str]) -> list[tuple[dict[str, Any], Any]]:
    """(values of ``by``, rows) per distinct combination of ``by``, in first-seen order;
    one group holding every row when ``by`` is empty."""
    if not by:
        return [({}, table)]
    out = []
    for key, rows in table.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append((dict(zip(by, key)), rows))
    return out


def summarize(table: Any, by: Sequence[str], metrics: Sequence[str] | None = None,
              confidence: float = CONFIDENCE) -> Any:
    """Per group of ``by`` (a grid point) and number: n, mean, std and the t interval.

    Args:
        table: a DataFrame with one row per run.
        by: the columns that make a group (the grid parameters).
        metrics: the numbers to summarise (default: every numeric column but ``by``,
            ``seed`` and ``run_id``).
        confidence: the interval's level.

    Returns:
        A long DataFrame with columns ``*by, metric, n, mean, std, ci_low, ci_high``;
        with n = 1 std and the interval are NaN.
    """
    import pandas as pd

    by = list(by)
    if metrics is None:
        metrics = numeric_columns(table, exclude=[*by, "seed", "run_id"])
    rows = []
    for key, group in groups(table, by):
        for metric in metrics:
            iv = mean_interval(group[metric].tolist(), confidence)
            rows.append({**key, "metric": metric, "n": iv.n, "mean": iv.mean, "std": iv.std,
                         "ci_low": iv.low, "ci_high": iv.high})
    return pd.DataFrame(rows, columns=[*by, "metric", "n", "mean", "std", "ci_low", "ci_high"])


def paired_difference(table: Any, a: str, b: str, by: Sequence[str] = (),
                      confidence: float = CONFIDENCE) -> Any:
    """Mean of column ``a`` minus column ``b`` over the rows that hold both, with a paired
    t interval, per group of ``by``.

    Each row (run) gives one difference, e.g. ``accuracy_final_gradual`` minus
    ``accuracy_final_direct`` of the same model and data. Example: a = [0.9, 0.8, 0.85],
    b = [0.8, 0.8, 0.75] give mean 0.0667 and the interval [-0.0768, 0.2101].

    Returns:
        A DataFrame with columns ``*by, a, b, n, mean_a, mean_b, mean_diff, std_diff,
        ci_low, ci_high, t, p_value`` (two-sided p of the paired t test). With n < 2 the
        spread, interval, t and p are NaN; with every difference equal, the interval is
        that difference and t, p are NaN.

    Raises:
        ValueError: a column that is not in the table, naming the numeric ones.
    """
    import pandas as pd
    from scipy import stats as scipy_stats

    for col in (a, b):
        if col not in table.columns:
            choices = ", ".join(numeric_columns(table, exclude=[*by, "seed", "run_id"]))
            raise ValueError(f"{col!r} is not a column of the table; numbers recorded: {choices or 'none'}")
    rows = []
    for key, group in groups(table, list(by)):
        pairs = [(float(x), float(y)) for x, y in zip(group[a].tolist(), group[b].tolist())
                 if _is_number(x) and _is_number(y) and not (math.isnan(float(x)) or math.isnan(float(y)))]
        iv = mean_interval([x - y for x, y in pairs], confidence)
        t_stat = p_value = math.nan
        if iv.n >= 2 and iv.std > 0:
            t_stat = iv.mean / (iv.std / math.sqrt(iv.n))
            p_value = float(2 * scipy_stats.t.sf(abs(t_stat), iv.n - 1))
        rows.append({**key, "a": a, "b": b, "n": iv.n,
                     "mean_a": math.fsum(x for x, _ in pairs) / iv.n if iv.n else math.nan,
                     "mean_b": math.fsum(y for _, y in pairs) / iv.n if iv.n else math.nan,
                     "mean_diff": iv.mean, "std_diff": iv.std, "ci_low": iv.low, "ci_high": iv.high,
                     "t": t_stat, "p_value": p_value})
    return pd.DataFrame(rows, columns=[*by, "a", "b", "n", "mean_a", "mean_b", "mean_diff",
                                       "std_diff", "ci_low", "ci_high", "t", "p_value"])
