"""Running a whole sweep: resumption, the manifest, where the runs go, and the tables at
the end (see the package docstring)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import stats
from .. import runner
from .grid import Point, expand, jsonish
from .tables import MANIFEST_NAME, collect_table, finished, read_json, write_tables, write_text
from .validate import validate
from .workers import Outcome, Task, install_files, run_dask, run_local


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes:
        out: the sweep's output folder.
        points: every point of the sweep, in table order.
        skipped: run ids finished by an earlier call and not run again.
        outcomes: the runs made by this call, in the order they finished.
        table: one row per finished run (also in ``out/sweep.csv``).
        summary: statistics per grid point (also in ``out/summary.csv``).
        interrupted: the call was stopped (Ctrl-C) before every point had run.
    """

    out: Path
    points: list[Point]
    skipped: list[str]
    outcomes: list[Outcome]
    table: Any
    summary: Any
    interrupted: bool = False
    grid: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def failures(self) -> list[Outcome]:
        """The runs of this call that failed."""
        return [o for o in self.outcomes if not o.ok]


def _check_previous(out: Path, points: Sequence[Point], profile: str,
                    fixed: Mapping[str, Any]) -> None:
    """Refuse to reuse a finished point made with another profile or parameters."""
    for point in points:
        record = read_json(out / point.run_id / runner.RUN_RECORD)
        if not isinstance(record, dict) or record.get("ok") is not True:
            continue
        want = {k: runner._jsonable_or_repr(v) for k, v in point.params(fixed).items()}
        have = record.get("parameters")
        if record.get("profile") != profile or have != want:
            raise ValueError(
                f"{out / point.run_id} holds a run with profile {record.get('profile')!r} and "
                f"parameters {have}; this sweep asks for profile {profile!r} and {want}. "
                "Use another --out, or delete that folder to redo it")


def _connect(scheduler: str, timeout: float) -> Any:
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ValueError(f"--scheduler needs dask.distributed: {exc}") from None
    try:
        return Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s "
                         f"({type(exc).__name__}: {exc}). Start one with `dask scheduler` and "
                         "workers with `dask worker ADDRESS`, and pass the address it prints "
                         "(e.g. tcp://10.0.0.5:8786)") from None


def _can_see(path: str, token: str) -> bool:
    try:
        return Path(path).read_text(encoding="utf-8") == token
    except OSError:
        return False


def _check_shared_disk(client: Any, out: Path) -> None:
    """Every worker must read a file written here under ``out``."""
    token = os.urandom(8).hex()
    probe = out / f".sweep-probe-{token}"
    probe.write_text(token, encoding="utf-8")
    try:
        seen = client.run(_can_see, str(probe), token)
    finally:
        probe.unlink(missing_ok=True)
    blind = sorted(addr for addr, ok in seen.items() if not ok)
    if not seen:
        raise ValueError("the Dask cluster has no workers yet; start some with `dask worker ADDRESS`")
    if blind:
        raise ValueError(f"--shared-disk: worker(s) {', '.join(blind)} cannot see {out}; the output "
                         "folder must be the same path on every machine, or drop --shared-disk "
                         "to have the runs' files returned to this machine")


def run_sweep(notebook: str | os.PathLike[str], profile: str, out: str | os.PathLike[str],
              grid: Mapping[str, Sequence[Any]] | None = None, seeds: int = 1, *,
              seed_start: int = 0, fixed: Mapping[str, Any] | None = None, jobs: int = 1,
              scheduler: str | None = None, shared_disk: bool = False,
              threads: int | None = None, timeout: float | None = None,
              progress: bool = True, connect_timeout: float = 10.0,
              kernel_name: str = runner.KERNEL_NAME,
              on_outcome: Callable[[Outcome], None] | None = None) -> SweepResult:
    """Run ``notebook`` over ``grid`` x seeds ``seed_start .. seed_start + seeds - 1``.

    See the module docstring for the output layout, resumption and where runs go.

    Args:
        notebook: path or name in ``notebooks/``.
        profile: ``"smoke"`` or ``"full"``.
        out: the sweep's output folder.
        grid: parameter -> values; empty or None: seeds only.
        seeds: how many seeds.
        seed_start: the first seed.
        fixed: parameters set for every run (``-p``).
        jobs: local runs at once (ignored with ``scheduler``).
        scheduler: a Dask scheduler address; None runs locally.
        shared_disk: with ``scheduler``, the workers write into ``out`` themselves.
        threads: torch/OpenMP threads per run (None: cores // runs at once).
        timeout: per-cell limit in seconds.
        progress: a bar over points with the ETA, on stderr.
        connect_timeout: seconds to wait for the scheduler.
        kernel_name: the kernelspec.
        on_outcome: called with each finished run (after its files are in place).

    Returns:
        A :class:`SweepResult`; failed points do not raise, they are in ``.failures``.

    Raises:
        ValueError: bad parameters, values, seeds, jobs or threads, a finished point made
            with other settings, or an unreachable scheduler; raised before anything runs.
        KeyboardInterrupt: after writing the tables of the finished points; no point is
            left half written.
    """
    nb_path = runner.resolve_notebook(notebook)
    grid = {k: list(v) for k, v in (grid or {}).items()}
    fixed = dict(fixed or {})
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r}: expected an integer >= 1 (the number of seeds)")
    if isinstance(seed_start, bool) or not isinstance(seed_start, int) or seed_start < 0:
        raise ValueError(f"seed_start={seed_start!r}: expected an integer >= 0")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r}: expected an integer >= 1")
    runner.kernel_env(1, threads)  # checks threads
    if shared_disk and scheduler is None:
        raise ValueError("shared_disk=True only applies with a scheduler (a Dask cluster)")
    seed_list = list(range(seed_start, seed_start + seeds))
    validate(nb_path, profile, grid, seed_list, fixed)
    out = Path(out).resolve()
    points = expand(grid, seed_list)
    _check_previous(out, points, profile, fixed)

    client = _connect(scheduler, connect_timeout) if scheduler is not None else None
    try:
        out.mkdir(parents=True, exist_ok=True)
        runner.clean_stale_staging(out)
        if client is not None and shared_disk:
            _check_shared_disk(client, out)
        manifest = {"notebook": str(nb_path), "profile": profile,
                    "grid": {k: [jsonish(v) for v in vs] for k, vs in grid.items()},
                    "seeds": seed_list, "fixed": {k: jsonish(v) for k, v in fixed.items()}}
        write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2, default=repr) + "\n")

        done = [p.run_id for p in points if finished(out, p)]
        done_set = set(done)
        # seeds outermost: a partial sweep has every grid point at a few seeds
        todo = [p for _, _, p in sorted((p.seed, i, p) for i, p in enumerate(points)
                                        if p.run_id not in done_set)]
        source = nb_path.read_bytes() if client is not None and not shared_disk else None
        task_out = None if (client is not None and not shared_disk) else str(out)
        tasks = [Task(str(nb_path), source, profile, p.params(fixed), p.run_id, task_out,
                      jobs=None if client is not None else min(jobs, max(1, len(todo))),
                      threads=threads, timeout=timeout, kernel_name=kernel_name) for p in todo]
        outcomes: list[Outcome] = []
        result = SweepResult(out, points, done, outcomes, None, None, grid=grid)

        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=f"sweep {nb_path.stem}", unit="run", disable=not progress,
                   file=sys.stderr, postfix={"done before": len(done)} if done else None)

        def finish(outcome: Outcome) -> None:
            if outcome.files is not None:
                outcome.folder = str(install_files(out, outcome.run_id, outcome.ok, outcome.files))
                outcome.files = None
            outcomes.append(outcome)
            failed = sum(not o.ok for o in outcomes)
            bar.set_postfix_str(f"{outcome.run_id} {'ok' if outcome.ok else 'FAILED'}"
                                + (f", {failed} failed" if failed else ""), refresh=False)
            bar.update(1)
            if on_outcome is not None:
                on_outcome(outcome)

        try:
            if tasks:
                if client is None:
                    run_local(tasks, jobs, finish)
                else:
                    run_dask(client, tasks, finish)
        except KeyboardInterrupt:
            result.interrupted = True
            raise
        finally:
            bar.close()
            result.table = collect_table(out, points, list(grid))
            result.summary = stats.summarize(result.table, list(grid))
            write_tables(out, result.table, result.summary)
        return result
    finally:
        if client is not None:
            client.close()


