"""``python -m snnkit report OUT``: every claim recorded under a folder, in one table.

A run's ``results.json`` holds its claims (``claims`` -> key -> declaration, per-seed
values, verdict; see :meth:`snnkit.notebook.Recorder.claim`) and its ``run.json`` the
notebook, profile and parameters it ran with. The report finds every finished run under
``OUT`` (any depth: a ``snnkit run --out`` folder with one run per notebook, a ``snnkit
sweep`` folder with one run per grid point and seed, or a folder holding several of
them), groups the runs of the same notebook, profile and parameters other than ``seed``
(one grid point), pools each claim's per-seed values across the group (each run paired
within itself) and decides it again with :func:`snnkit.claims.decide_pooled`: the rule
the notebooks use, so a one-run report shows the notebook's own verdicts.

Failed runs (``run.json`` not ok), staging folders and ``*.failed`` folders are left out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .claims import COLUMNS, Claim, ClaimsTable, Evidence, Verdict, decide_pooled
from .notebook.config import CLAIMS_KEY
from .notebook.runner import RUN_RECORD
from .notebook.sweep.tables import read_json

RESULTS = "results.json"


@dataclass(frozen=True)
class Run:
    """One finished notebook run found under the report's folder.

    Attributes:
        folder: where it is.
        notebook: the notebook's name (``01_spatiotemporal_pca``).
        profile: ``smoke`` or ``full``.
        parameters: the parameters injected into it, ``seed`` left out.
        seed: its ``seed`` parameter (None: the notebook's default).
        claims: ``results.json`` -> ``claims``: key -> record.
    """

    folder: Path
    notebook: str
    profile: str
    parameters: dict[str, Any]
    seed: Any
    claims: dict[str, Any]


@dataclass(frozen=True)
class Pooled:
    """One claim of one grid point, decided over every run that recorded it.

    Attributes:
        notebook, profile, parameters: the grid point.
        verdict: the claim decided on the pooled values.
        runs: the run folders pooled.
    """

    notebook: str
    profile: str
    parameters: dict[str, Any]
    verdict: Verdict
    runs: tuple[Path, ...]


def find_runs(out: str | os.PathLike[str]) -> tuple[list[Run], list[Path]]:
    """The finished runs under ``out`` that recorded claims, in path order, and the run
    folders left out (failed, or without a readable ``run.json``).

    Raises:
        FileNotFoundError: ``out`` is not a folder.
    """
    root = Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; expected the --out folder of `snnkit run` or "
                                "`snnkit sweep`")
    runs, skipped = [], []
    for path in sorted(root.rglob(RESULTS)):
        folder = path.parent
        parts = folder.relative_to(root).parts
        if any(p.startswith(".") or p.endswith(".failed") for p in parts):
            continue
        record = read_json(folder / RUN_RECORD)
        if not isinstance(record, dict) or record.get("ok") is not True:
            skipped.append(folder)
            continue
        results = read_json(path)
        claims = results.get(CLAIMS_KEY) if isinstance(results, dict) else None
        if not isinstance(claims, dict) or not claims:
            continue
        params = dict(record.get("parameters") or {})
        seed = params.pop("seed", None)
        notebook = Path(str(record.get("notebook") or folder.name)).stem
        runs.append(Run(folder, notebook, str(record.get("profile", "")), params, seed, claims))
    return runs, skipped


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def pool(runs: Iterable[Run]) -> list[Pooled]:
    """Group the runs by notebook, profile and parameters, and decide every claim over the
    pooled values of its group; in the order of first appearance (notebooks sorted by
    name).

    Raises:
        ValueError: a claim record without its declaration, naming the run.
    """
    groups: dict[tuple[str, str, str, str, str], list[tuple[Run, Evidence]]] = {}
    claims: dict[tuple[str, str, str, str, str], Claim] = {}
    for run in runs:
        for key, record in run.claims.items():
            if not isinstance(record, Mapping) or "claim" not in record:
                raise ValueError(f"{run.folder / RESULTS}: claim {key!r} has no declaration; expected a "
                                 "record written by rec.claim(...)")
            claim = Claim.from_dict(record["claim"])
            group = (run.notebook, run.profile, _key(run.parameters), key, _key(claim.to_dict()))
            groups.setdefault(group, []).append((run, Evidence.from_dict(record)))
            claims[group] = claim
    first_seen = {g: i for i, g in enumerate(groups)}
    order = sorted(groups, key=lambda g: (g[0], first_seen[g]))
    pooled = []
    for group in order:
        members = groups[group]
        verdict = decide_pooled(claims[group], [e for _, e in members])
        first = members[0][0]
        pooled.append(Pooled(first.notebook, first.profile, first.parameters, verdict,
                             tuple(r.folder for r, _ in members)))
    return pooled


def _settings(pooled: list[Pooled]) -> list[str]:
    """Per row, the parameters that tell its grid point from the others of its notebook
    (``variance_threshold=0.99``), with the profile when a notebook ran with several."""
    by_notebook: dict[str, list[Pooled]] = {}
    for p in pooled:
        by_notebook.setdefault(p.notebook, []).append(p)
    varying: dict[str, list[str]] = {}
    for notebook, rows in by_notebook.items():
        names = sorted({k for r in rows for k in r.parameters})
        varying[notebook] = [n for n in names if len({_key(r.parameters.get(n)) for r in rows}) > 1]
        if len({r.profile for r in rows}) > 1:
            varying[notebook].insert(0, "profile")
    out = []
    for p in pooled:
        values = {**p.parameters, "profile": p.profile}
        out.append(", ".join(f"{n}={_plain(values.get(n))}" for n in varying[p.notebook]))
    return out


def _plain(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def report_table(out: str | os.PathLike[str]) -> tuple[ClaimsTable, list[Run], list[Path]]:
    """The claims of every run under ``out``, pooled per grid point, as a table with the
    columns of a notebook's verdict table (plus ``setting`` when a notebook ran at several
    grid points), the runs read and the run folders left out.

    Raises:
        FileNotFoundError: ``out`` is not a folder.
        ValueError: a malformed claim record.
    """
    runs, skipped = find_runs(out)
    pooled = pool(runs)
    settings = _settings(pooled)
    rows = []
    for p, setting in zip(pooled, settings):
        row = p.verdict.row()
        row["setting"] = setting
        rows.append(row)
    columns = list(COLUMNS)
    if any(settings):
        columns.insert(columns.index("claim") + 1, "setting")
    return ClaimsTable(rows=rows, columns=columns), runs, skipped
