"""A sweep's tables: one row per finished run (``sweep.csv``), the summary per grid point
(``summary.csv``), and the lines the command prints about them."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ... import stats
from .. import runner
from ..config import CLAIMS_KEY, _atomic_write_bytes
from .grid import Point, jsonish

TABLE_NAME = "sweep.csv"
SUMMARY_NAME = "summary.csv"
FIGURE_NAME = "summary.png"
MANIFEST_NAME = "sweep.json"
RUN_SECONDS = "run_seconds"
"""Column of the table holding each run's wall time in seconds."""


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None if it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def finished(out: Path, point: Point) -> bool:
    """Whether ``out/<run-id>`` holds a successful run (its ``run.json`` says ok)."""
    record = read_json(out / point.run_id / runner.RUN_RECORD)
    return isinstance(record, dict) and record.get("ok") is True and \
        (out / point.run_id / "results.json").is_file()


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    _atomic_write_bytes(path, text.encode("utf-8"))


def flatten(results: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The scalars of a results.json object; nested dicts become ``outer.inner`` (as in
    the bands). Lists are left out: a row holds one number per column; so are the
    claims (``claims``), which ``snnkit report`` reads.

    ``flatten({"a": 1, "b": {"4": 0.5}, "c": [1, 2], "d": "x"})`` ->
    ``{"a": 1, "b.4": 0.5, "d": "x"}``.
    """
    flat: dict[str, Any] = {}
    for key, value in results.items():
        if not prefix and key == CLAIMS_KEY:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif not isinstance(value, (list, tuple)):
            flat[name] = value
    return flat


def _cell(value: Any) -> Any:
    """A grid value as a table cell: lists as their JSON text, so that they group."""
    if isinstance(value, (list, tuple)):
        return json.dumps(jsonish(value))
    return value


def collect_table(out: str | os.PathLike[str], points: Sequence[Point],
                  grid_names: Sequence[str]) -> Any:
    """One row per finished point: ``run_id``, the grid values, ``seed``, every scalar of
    its results.json (see :func:`flatten`; a result named like a grid parameter becomes
    ``results.NAME``) and ``run_seconds``. Points not finished are left out.

    Returns:
        A pandas DataFrame, in the order of ``points``.
    """
    import pandas as pd

    out = Path(out)
    fixed_cols = ["run_id", *grid_names, "seed"]
    rows = []
    for point in points:
        if not finished(out, point):
            continue
        record = read_json(out / point.run_id / runner.RUN_RECORD) or {}
        results = read_json(out / point.run_id / "results.json") or {}
        row: dict[str, Any] = {"run_id": point.run_id, **{n: _cell(point.values[n]) for n in grid_names},
                               "seed": point.seed}
        for key, value in flatten(results).items():
            row[f"results.{key}" if key in fixed_cols or key == RUN_SECONDS else key] = value
        row[RUN_SECONDS] = record.get("seconds", math.nan)
        rows.append(row)
    columns = list(fixed_cols)
    for row in rows:
        columns.extend(k for k in row if k not in columns and k != RUN_SECONDS)
    columns.append(RUN_SECONDS)
    return pd.DataFrame(rows, columns=columns)


def write_tables(out: str | os.PathLike[str], table: Any, summary: Any) -> None:
    """Write ``sweep.csv`` and ``summary.csv`` into ``out``, each atomically."""
    out = Path(out)
    write_text(out / TABLE_NAME, table.to_csv(index=False))
    write_text(out / SUMMARY_NAME, summary.to_csv(index=False))


def read_table(out: str | os.PathLike[str]) -> Any:
    """``out/sweep.csv`` as a DataFrame."""
    import pandas as pd

    return pd.read_csv(Path(out) / TABLE_NAME)


def format_summary(summary: Any, metrics: Sequence[str], by: Sequence[str]) -> str:
    """Lines ``  grid values  metric: mean (low-high), n seeds`` for the given metrics,
    ``one run, no interval`` where a point has one seed."""
    lines = []
    rows = summary[summary["metric"].isin(list(metrics))] if len(summary) else summary
    for _, r in rows.iterrows():
        where = ", ".join(f"{b}={r[b]}" for b in by) or "all runs"
        iv = stats.Interval(int(r["n"]), r["mean"], r["std"], r["ci_low"], r["ci_high"])
        lines.append(f"  {where}  {r['metric']}: {iv}")
    return "\n".join(lines)


def format_comparison(diff: Any, by: Sequence[str]) -> str:
    """Lines ``  grid values: mean difference (low to high), n seeds, p=...`` of a
    :func:`snnkit.stats.paired_difference` table."""
    lines = []
    for _, r in diff.iterrows():
        where = ", ".join(f"{n}={r[n]}" for n in by) or "all runs"
        iv = stats.Interval(int(r["n"]), r["mean_diff"], r["std_diff"], r["ci_low"], r["ci_high"])
        p = "" if math.isnan(r["p_value"]) else f", p={r['p_value']:.3g}"
        lines.append(f"  {where}: {iv.format(signed=True)}{p}")
    return "\n".join(lines)
