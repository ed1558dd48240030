"""snnkit.stats on hand-computed cases: t intervals, paired differences, tables, and what a
reader sees when an interval is printed."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from snnkit import stats
from snnkit.stats import Interval, mean_interval


def test_mean_interval_hand_computed():
    iv = mean_interval([1, 2, 3, 4])
    # mean 2.5, std sqrt(5/3), t_{0.975, 3} = 3.18245: half width 3.18245 * 1.29099 / 2 = 2.05426
    assert iv.n == 4 and iv.mean == 2.5 and iv.confidence == 0.95
    assert iv.std == pytest.approx(math.sqrt(5 / 3))
    assert (iv.low, iv.high) == pytest.approx((2.5 - 2.054260, 2.5 + 2.054260), abs=1e-6)
    wide = mean_interval([1, 2, 3, 4], confidence=0.99)  # t_{0.995, 3} = 5.84091
    assert wide.high - wide.mean == pytest.approx(5.840909 * math.sqrt(5 / 3) / 2, rel=1e-6)
    one = mean_interval([0.7])
    assert one.n == 1 and one.mean == 0.7 and all(math.isnan(v) for v in (one.std, one.low, one.high))
    assert mean_interval([float("nan"), 2.0, None]).n == 1
    assert mean_interval([]).n == 0
    same = mean_interval([0.5, 0.5, 0.5])  # no spread: the interval is the value
    assert (same.low, same.high) == (0.5, 0.5)
    assert stats.t_quantile(0.95, 2) == pytest.approx(4.302653, abs=1e-6)
    with pytest.raises(ValueError, match=r"confidence=95: expected a number in \(0, 1\)"):
        mean_interval([1, 2], confidence=95)


def test_interval_prints_for_a_reader():
    assert str(mean_interval([0.91, 0.93, 0.95])) == "0.930 (0.880-0.980), 3 seeds"
    assert str(mean_interval([0.7])) == "0.700, one run, no interval"
    assert str(mean_interval([])) == "no values"
    assert "nan" not in str(mean_interval([0.7])) + mean_interval([0.7]).format(scale=100, unit="points")
    diff = stats.paired_interval({0: 0.92, 1: 0.95}, {0: 0.90, 1: 0.91})
    # differences 0.02, 0.04: mean 0.03, std 0.014142, t_{0.975, 1} = 12.7062: half 0.127062
    assert diff.format(scale=100, unit="points", signed=True) == "+3.0 points (-9.7 to +15.7), 2 seeds"
    assert Interval(10, 8.5, 1.5, 7.5, 9.6).format(unit="x") == "8.50x (7.50-9.60), 10 seeds"
    assert Interval(6, 1.3, 0.5, 0.73, 1.87).format(2, "points", signed=True, runs="nets") == \
        "+1.30 points (+0.73 to +1.87), 6 nets"
    assert Interval(3, 19.0, 1.0, 17.0, 21.0).format(0, "%") == "19% (17-21), 3 seeds"
    assert Interval(2, -1, 1, -3, 1).scaled(-2)[:5] == (2, 2, 2, -2, 6)
    assert not Interval(1, 0.5, math.nan, math.nan, math.nan).has_interval


def test_rounding_rules():
    assert [stats.decimals_for(x) for x in (0.955, 1.67, 12.2, 1547.0, 0.0082, 0.0)] == [3, 2, 1, 0, 4, 2]
    assert stats.decimals_for(0.02, -1.34, 1.37) == 2  # the largest magnitude decides
    assert stats.format_number(8.46, 1, "x") == "8.5x"
    assert stats.format_number(-1.674, 2, "points") == "-1.67 points"
    assert stats.format_number(0.5, 1, "%") == "0.5%"
    assert stats.format_number(3.16, 2, signed=True) == "+3.16"
    assert stats.format_number(math.nan) == "n/a"


def test_pairing_by_seed():
    assert stats.pair_by_seed({0: 0.9, 1: 0.8, 2: None, 3: 0.5}, {0: 0.8, 1: 0.7, 2: 0.6}) == \
        [(0, 0.9, 0.8), (1, 0.8, 0.7)]
    assert stats.paired_differences([0.9, 0.8, 0.85], [0.8, 0.8, 0.75]) == pytest.approx([0.1, 0.0, 0.1])
    assert stats.paired_differences([0.9, 0.8], 0.5) == pytest.approx([0.4, 0.3])  # one shared B
    assert stats.paired_differences([0.9, 0.8], [0.5]) == pytest.approx([0.4, 0.3])
    assert stats.paired_ratios({0: 2.0, 1: 3.0}, {0: 1.0, 1: 2.0}) == [2.0, 1.5]
    iv = stats.paired_interval([0.9, 0.8, 0.85], [0.8, 0.8, 0.75])
    # differences [0.1, 0, 0.1]: mean 1/15, std 0.057735, t_{0.975, 2} = 4.30265 -> half 0.143422
    assert iv.mean == pytest.approx(1 / 15)
    assert (iv.low, iv.high) == pytest.approx((1 / 15 - 0.143422, 1 / 15 + 0.143422), abs=1e-6)
    with pytest.raises(ValueError, match=r"a has 3 values and b 2"):
        stats.paired_differences([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"both mappings seed -> value or both sequences"):
        stats.paired_differences({0: 1.0}, [1.0])
    with pytest.raises(ValueError, match=r"b is 0 at seed 1"):
        stats.paired_ratios([1.0, 1.0], [2.0, 0.0])


def test_summarize_hand_computed():
    table = pd.DataFrame({"run_id": list("abcde"), "a": [1, 1, 1, 1, 2], "seed": [0, 1, 2, 3, 0],
                          "m": [1.0, 2.0, 3.0, 4.0, 5.0], "k": [10, 10, 10, 10, 7],
                          "note": ["x"] * 5, "flag": [True] * 5})
    assert stats.numeric_columns(table, exclude=["run_id"]) == ["a", "seed", "m", "k"]
    summary = stats.summarize(table, ["a"])
    assert list(summary.columns) == ["a", "metric", "n", "mean", "std", "ci_low", "ci_high"]
    assert list(summary["metric"]) == ["m", "k", "m", "k"]  # strings and booleans are not numbers
    m1 = summary[(summary.a == 1) & (summary.metric == "m")].iloc[0]
    assert (m1.n, m1["mean"]) == (4, 2.5)
    assert (m1.ci_low, m1.ci_high) == pytest.approx((0.445740, 4.554260), abs=1e-6)
    k1 = summary[(summary.a == 1) & (summary.metric == "k")].iloc[0]
    assert (k1["std"], k1.ci_low, k1.ci_high) == (0.0, 10.0, 10.0)
    m2 = summary[(summary.a == 2) & (summary.metric == "m")].iloc[0]
    assert m2.n == 1 and m2["mean"] == 5.0 and math.isnan(m2.ci_low) and math.isnan(m2["std"])
    everything = stats.summarize(table, [], metrics=["m"])
    assert everything.iloc[0]["n"] == 5 and everything.iloc[0]["mean"] == 3.0
    assert [key for key, _ in stats.groups(table, ["a"])] == [{"a": 1}, {"a": 2}]


def test_paired_difference_hand_computed():
    table = pd.DataFrame({"g": [1, 1, 1, 2, 2], "gradual": [0.9, 0.8, 0.85, 0.5, 0.6],
                          "direct": [0.8, 0.8, 0.75, 0.4, 0.5]})
    diff = stats.paired_difference(table, "gradual", "direct", by=["g"])
    first = diff.iloc[0]
    assert first.n == 3 and first.mean_diff == pytest.approx(1 / 15)
    assert first.std_diff == pytest.approx(0.0577350, abs=1e-6)
    assert (first.ci_low, first.ci_high) == pytest.approx((1 / 15 - 0.143422, 1 / 15 + 0.143422), abs=1e-6)
    assert first.mean_a == pytest.approx(0.85) and first.mean_b == pytest.approx(0.7833333, abs=1e-6)
    assert first.t == pytest.approx(2.0) and first.p_value == pytest.approx(0.1835034, abs=1e-6)
    second = diff.iloc[1]  # every difference 0.1: the interval collapses, t is undefined
    assert second.n == 2 and (second.ci_low, second.ci_high) == pytest.approx((0.1, 0.1))
    assert math.isnan(second.t)
    overall = stats.paired_difference(table, "gradual", "direct")
    assert overall.iloc[0]["n"] == 5 and overall.iloc[0]["mean_diff"] == pytest.approx(0.08)
    with pytest.raises(ValueError, match=r"'accuracy' is not a column .* recorded: g, gradual, direct"):
        stats.paired_difference(table, "accuracy", "direct")
