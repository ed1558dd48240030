"""Sweeps: one notebook run per point of a parameter grid and per seed, then statistics.

A claim decided by a difference of one test image is noise until it holds over seeds. A
sweep runs a notebook once for every combination of grid values and every seed, through
the same runner as ``python -m snnkit run``, and tabulates what each run recorded::

    python -m snnkit sweep notebooks/01_spatiotemporal_pca.ipynb --profile full --out DIR \\
        --grid variance_threshold=0.95,0.99,0.999 --seeds 10 [--jobs N] [--scheduler ADDRESS]

Layout of ``DIR``::

    DIR/<run-id>/              one finished run: NAME.ipynb, results.json, run.json, figures/
    DIR/<run-id>.failed/       the last failed attempt of a point (executed copy with traceback)
    DIR/sweep.json             how the sweep was asked for (notebook, profile, grid, seeds)
    DIR/sweep.csv              one row per finished run: run_id, grid values, seed, every
                               scalar of results.json (nested dicts as ``a.b``), run_seconds
    DIR/summary.csv            per grid point and number: n, mean, std, 95% t-interval
    DIR/summary.png            chosen numbers against a grid parameter, with the intervals

The run id names the point: ``variance_threshold=0.95,seed=3`` (a short hash is added when a
value does not make a plain file name). Each point is written atomically by the runner
(staging folder + rename), so an interrupted sweep leaves finished points and nothing half
written; rerunning the same command skips the finished points (their ``run.json`` says
``ok``) and redoes failed or missing ones. A point whose folder was made with another
profile or other parameters is an error, not silently reused.

Where the runs go:

* locally (default): a pool of ``jobs`` worker processes, each driving one kernel at a time;
  every kernel gets ``cpu_count // jobs`` threads unless ``threads`` is given.
* ``scheduler="tcp://host:8786"``: a Dask cluster (``dask scheduler`` / ``dask worker``),
  through ``distributed`` futures. By default the workers run into their own temporary
  folder and return the point's files (notebook, results, figures) to the client as bytes,
  which writes them into ``DIR``: no shared disk is needed. With ``shared_disk=True`` the
  workers write into ``DIR`` themselves, which must then be the same path on every
  machine (checked before anything runs).

A seed fixes a run's numbers for a given thread count: torch's CPU reductions may round
differently with another number of threads, so give ``threads`` to compare runs made on
different machines.

Statistics are pure functions of the table: :func:`mean_interval` (Student t interval),
:func:`summarize`, :func:`paired_difference` (paired t interval on per-run differences)
and :func:`plot_summary`.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from . import runner
from .config import ConfigError, _atomic_write_bytes, make_config

TABLE_NAME = "sweep.csv"
SUMMARY_NAME = "summary.csv"
FIGURE_NAME = "summary.png"
MANIFEST_NAME = "sweep.json"
RUN_SECONDS = "run_seconds"
"""Column of the table holding each run's wall time in seconds."""

SWEEP_RESERVED = ("seed",)
"""Parameters a sweep sets itself (``seeds``), besides the runner's own."""


# ------------------------------------------------------------------------------- grid


def split_values(text: str) -> list[str]:
    """Split ``"0.9,[25, 10],'a,b'"`` at the commas that are outside brackets and quotes.

    Raises:
        ValueError: unbalanced brackets or quotes, naming the text.
    """
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
            depth += 1
        elif ch in ")]}":
            if not stack or stack.pop() != pairs[ch]:
                raise ValueError(f"{text!r}: unbalanced {ch!r}")
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quote or stack:
        raise ValueError(f"{text!r}: unclosed {quote or stack[-1]!r}")
    parts.append("".join(current))
    return parts


def parse_grid_value(text: str) -> Any:
    """A grid value: a Python literal (``3``, ``0.99``, ``[25, 10, 5]``, ``None``), else the
    bare word as a string (``digits``).

    Raises:
        ValueError: an empty value, or text that looks like a literal but is not one
            (``[1, 2``, ``'a``, ``1..2``).
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty value")
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    word = stripped.replace("-", "").replace("_", "").replace("/", "").replace(".", "")
    if word.isalnum() and not stripped[0].isdigit() and not stripped.startswith((".", "-")):
        return stripped
    raise ValueError(f"{stripped!r} is neither a Python literal (3, 0.99, [25, 10], None, "
                     "'text') nor a bare word")


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """Read ``["variance_threshold=0.95,0.99", "epochs=1,2"]`` into
    ``{"variance_threshold": [0.95, 0.99], "epochs": [1, 2]}``.

    Values are split at commas outside brackets, so a list value is written
    ``timesteps_schedule=[25,15,10,5],[10,5]``. Parameter names are not checked here
    (:func:`validate` does that against the notebook).

    Raises:
        ValueError: an item without ``=``, a name that is not an identifier, a name given
            twice, an unparsable or repeated value; the message names the item.
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"--grid {item!r}: expected NAME=VALUE1,VALUE2,... "
                             "e.g. variance_threshold=0.95,0.99")
        if not name.isidentifier():
            raise ValueError(f"--grid {item!r}: {name!r} is not a parameter name")
        if name in grid:
            raise ValueError(f"--grid {item!r}: {name} is given twice; list all its values "
                             f"in one --grid {name}=...")
        try:
            texts = split_values(rest)
        except ValueError as exc:
            raise ValueError(f"--grid {item!r}: cannot read the values: {exc}") from None
        values = []
        for text in texts:
            try:
                value = parse_grid_value(text)
            except ValueError as exc:
                raise ValueError(f"--grid {item!r}: cannot read value {text.strip()!r}: "
                                 f"{exc}") from None
            if value in values:
                raise ValueError(f"--grid {item!r}: value {value!r} is listed twice")
            values.append(value)
        grid[name] = values
    return grid


def _slug(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_slug(v) for v in value)
    return str(value)


def run_id(values: Mapping[str, Any], seed: int) -> str:
    """The folder name of one run: ``epochs=1,train_subset=200,seed=0``.

    Values that are not plain numbers or words (lists, strings with odd characters) are
    written simply and a short hash of the exact values is appended, so that two points
    never share a folder.
    """
    text = ",".join([*(f"{k}={_slug(v)}" for k, v in values.items()), f"seed={seed}"])
    plain = all(isinstance(v, (int, float, bool, type(None))) or
                (isinstance(v, str) and v.replace("-", "").replace("_", "").replace(".", "").isalnum())
                for v in values.values())
    safe = "".join(c if c.isalnum() or c in "._=,+-" else "_" for c in text)
    if plain and safe == text and len(text) <= 150:
        return text
    digest = hashlib.sha1(json.dumps([{k: _jsonish(v) for k, v in values.items()}, seed],
                                     sort_keys=True).encode()).hexdigest()[:8]
    return f"{safe[:140]}-{digest}"


def _jsonish(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonish(v) for v in value]
    if isinstance(value, list):
        return [_jsonish(v) for v in value]
    return value


@dataclass(frozen=True)
class Point:
    """One run of a sweep.

    Attributes:
        run_id: its folder name in the sweep's output folder.
        values: grid parameter -> value, in grid order.
        seed: the ``seed`` parameter.
    """

    run_id: str
    values: dict[str, Any]
    seed: int

    def params(self, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameters injected into the notebook: ``fixed``, the grid values, the seed."""
        return {**(fixed or {}), **self.values, "seed": self.seed}


def expand(grid: Mapping[str, Sequence[Any]], seeds: Sequence[int]) -> list[Point]:
    """Every combination of grid values (first parameter varying slowest) times every seed.

    ``expand({"a": [1, 2]}, [0, 1])`` gives a=1 seed 0, a=1 seed 1, a=2 seed 0, a=2 seed 1.
    """
    names = list(grid)
    points = []
    for combo in itertools.product(*(grid[n] for n in names)):
        values = dict(zip(names, combo))
        points.extend(Point(run_id(values, s), values, s) for s in seeds)
    return points


# -------------------------------------------------------------------------- validation


def validate(notebook: str | os.PathLike[str], profile: str, grid: Mapping[str, Sequence[Any]],
             seeds: Sequence[int], fixed: Mapping[str, Any] | None = None) -> runner.NotebookSpec:
    """Check a sweep before anything runs; return the notebook's specification.

    Every grid and fixed parameter must be declared by the notebook's ``parameters`` cell
    and not be set by the runner (``profile``, ``out_dir``) or the sweep (``seed``).
    Every point is then checked the way the notebook's own ``make_config`` would check it
    (its ``SPEC``, ``PROFILE_DEFAULTS`` and data sets; see
    :func:`~snnkit.notebook.runner.notebook_spec`). Checks that a notebook makes later
    than ``make_config`` (e.g. a schedule's order) show up as failed points.

    Raises:
        ValueError: naming the bad parameter or value and what is accepted.
        FileNotFoundError: the notebook does not exist.
    """
    nb_path = runner.resolve_notebook(notebook)
    runner._check_profile(profile)
    fixed = dict(fixed or {})
    nb = runner.notebook_spec(nb_path)
    declared = [n for n in nb.parameters if n not in runner.RESERVED_PARAMETERS]
    for source, names in (("--grid", list(grid)), ("-p", list(fixed))):
        for name in names:
            if name in runner.RESERVED_PARAMETERS:
                raise ValueError(f"{source} {name}: set by the runner (use --profile / --out)")
            if name in SWEEP_RESERVED:
                raise ValueError(f"{source} {name}: a sweep sets the seed itself; use --seeds N "
                                 "(and --seed-start S) for seeds S..S+N-1")
            if name not in nb.parameters:
                raise ValueError(f"{nb_path.stem}: unknown parameter {name!r} in {source}; its "
                                 f"parameters cell declares: {', '.join(declared) or 'nothing'}")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"{', '.join(both)}: given both with --grid and -p; keep one")
    for name, values in grid.items():
        if not list(values):
            raise ValueError(f"--grid {name}: no values")
    if "seed" not in nb.parameters:
        raise ValueError(f"{nb_path.stem}: its parameters cell has no 'seed', so a sweep cannot "
                         "set one")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds: expected at least one seed (--seeds N with N >= 1)")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seed={s!r}: expected an integer >= 0")
    if not nb.spec:
        return nb
    names = list(grid)
    for combo in itertools.product(*(grid[n] for n in names)):
        values = dict(zip(names, combo))
        params = {**nb.parameters, **fixed, **values, "seed": seeds[0], "profile": profile,
                  "out_dir": None}
        device = params.get("device")
        if device in runner.DEVICES:  # CUDA may exist on the workers, not here
            params["device"] = "cpu"
        datasets = nb.datasets if nb.datasets is not None else (params.get("dataset"),)
        try:
            # the files are checked where the runs are: a cluster's workers may hold data this client has not
            make_config(params, nb.spec, nb.profile_defaults, datasets=datasets, check_files=False)
        except ConfigError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "its fixed parameters"
            raise ValueError(f"{nb_path.stem} would refuse the point {where} "
                             f"(profile {profile!r}): {exc}") from None
    return nb


# ---------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one point; picklable.

    Attributes:
        notebook: the notebook's path on the client.
        source: the notebook's bytes, for workers that do not see the client's disk.
        profile: the run profile.
        params: the injected parameters (fixed, grid values, seed).
        run_id: the point's folder name.
        out: where the worker writes the point; None: into its own temporary folder,
            returning the files to the client.
        jobs: runs at once on the worker's machine (None: the Dask worker's thread count).
        threads: torch/OpenMP threads of the kernel (None: ``cpu_count // jobs``).
        timeout: per-cell time limit in seconds.
        kernel_name: the kernelspec.
    """

    notebook: str
    source: bytes | None
    profile: str
    params: dict[str, Any]
    run_id: str
    out: str | None
    jobs: int | None = 1
    threads: int | None = None
    timeout: float | None = None
    kernel_name: str = runner.KERNEL_NAME


@dataclass
class Outcome:
    """What one run of a point gave back.

    Attributes:
        run_id: the point.
        ok: every cell ran.
        seconds: the run's wall time.
        error: the failing cell and exception, or why the run could not start.
        folder: where the run's files are on the client (``DIR/<run-id>`` or
            ``DIR/<run-id>.failed``) once installed.
        files: relative path -> bytes, when the worker returned the files (no shared disk).
        host: the machine that ran it.
    """

    run_id: str
    ok: bool
    seconds: float = 0.0
    error: str | None = None
    folder: str | None = None
    files: dict[str, bytes] | None = None
    host: str = ""


_RUNNING = False  # a local pool worker is inside a run (it then obeys Ctrl-C)
_INTERRUPTED = False  # a local pool worker saw Ctrl-C: it takes no further run


def _pool_worker_init() -> None:
    """Local pool worker: Ctrl-C interrupts a run in progress (its staging folder is then
    removed) and makes the worker refuse the runs still queued for it; an idle worker
    just leaves when the pool shuts down."""

    def on_sigint(signum: int, frame: Any) -> None:
        global _INTERRUPTED
        _INTERRUPTED = True
        # the interrupted kernel client leaves tasks whose errors nobody reads
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        if _RUNNING:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)


def _worker_slots() -> int:
    """Runs a Dask worker may do at once (its thread count), else 1."""
    try:
        from distributed import get_worker

        return max(1, int(getattr(get_worker().state, "nthreads", 1)))
    except (ImportError, ValueError, AttributeError):
        return 1


def _pack(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_point(task: Task) -> Outcome:
    """Run one point through :func:`snnkit.notebook.runner.run_notebook`.

    With ``task.out`` the worker writes ``out/<run-id>`` itself; otherwise it runs into a
    temporary folder of its own and returns the files. A notebook that fails gives
    ``ok=False``; this function raises only for an interrupt.
    """
    import socket

    global _RUNNING
    if _INTERRUPTED:
        raise KeyboardInterrupt
    host = socket.gethostname()
    jobs = task.jobs if task.jobs is not None else _worker_slots()
    scratch = None
    _RUNNING = True
    try:
        if task.out is not None:
            out = Path(task.out)
            nb_path = Path(task.notebook)
        else:
            scratch = Path(tempfile.mkdtemp(prefix="snnkit-sweep-"))
            out = scratch / "out"
            nb_path = Path(task.notebook)
            if task.source is not None and not (nb_path.is_file() and nb_path.read_bytes() == task.source):
                nb_path = scratch / "notebook" / nb_path.name
                nb_path.parent.mkdir()
                nb_path.write_bytes(task.source)
        try:
            result = runner.run_notebook(nb_path, task.profile, out, task.params, jobs=jobs,
                                         kernel_name=task.kernel_name, timeout=task.timeout,
                                         name=task.run_id, threads=task.threads)
        except (ValueError, OSError) as exc:  # e.g. the notebook vanished on this worker
            return Outcome(task.run_id, False, 0.0, f"{type(exc).__name__}: {exc}", None, None, host)
        files = _pack(result.out_dir) if scratch is not None else None
        return Outcome(task.run_id, result.ok, result.seconds, result.error,
                       None if scratch is not None else str(result.out_dir), files, host)
    finally:
        _RUNNING = False
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def install_files(out: Path, run_id: str, ok: bool, files: Mapping[str, bytes]) -> Path:
    """Write a point's returned files into ``out`` atomically: into a staging folder
    first, then renamed to ``out/<run-id>`` (or ``<run-id>.failed``)."""
    out.mkdir(parents=True, exist_ok=True)
    staging = runner.new_staging(out, run_id)
    try:
        for rel, data in files.items():
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ValueError(f"returned file {rel!r}: expected a path inside the run folder")
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return runner.install(staging, out, run_id, ok)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------------------------ sweep


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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def finished(out: Path, point: Point) -> bool:
    """Whether ``out/<run-id>`` holds a successful run (its ``run.json`` says ok)."""
    record = _read_json(out / point.run_id / runner.RUN_RECORD)
    return isinstance(record, dict) and record.get("ok") is True and \
        (out / point.run_id / "results.json").is_file()


def _check_previous(out: Path, points: Sequence[Point], profile: str,
                    fixed: Mapping[str, Any]) -> None:
    """Refuse to reuse a finished point made with another profile or parameters."""
    for point in points:
        record = _read_json(out / point.run_id / runner.RUN_RECORD)
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


def _write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


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
                    "grid": {k: [_jsonish(v) for v in vs] for k, vs in grid.items()},
                    "seeds": seed_list, "fixed": {k: _jsonish(v) for k, v in fixed.items()}}
        _write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2, default=repr) + "\n")

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
                    _run_local(tasks, jobs, finish)
                else:
                    _run_dask(client, tasks, finish)
        except KeyboardInterrupt:
            result.interrupted = True
            raise
        finally:
            bar.close()
            result.table = collect_table(out, points, list(grid))
            result.summary = summarize(result.table, list(grid))
            write_tables(out, result.table, result.summary)
        return result
    finally:
        if client is not None:
            client.close()


def _run_local(tasks: Sequence[Task], jobs: int, finish: Callable[[Outcome], None]) -> None:
    """Run the tasks on a pool of ``jobs`` worker processes."""
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context,
                               initializer=_pool_worker_init)
    try:
        futures = {pool.submit(run_point, t): t for t in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                outcome = future.result()
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken worker fails its point only
                outcome = Outcome(task.run_id, False, 0.0, f"worker error: {type(exc).__name__}: {exc}")
            finish(outcome)
    except BaseException:
        # Ctrl-C reached the workers too: their runs stop and clean up; wait for that
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_dask(client: Any, tasks: Sequence[Task], finish: Callable[[Outcome], None]) -> None:
    """Submit the tasks to a Dask cluster and install each result as it arrives."""
    from distributed import as_completed as dask_completed

    token = os.urandom(4).hex()
    futures = [client.submit(run_point, t, key=f"snnkit-sweep-{t.run_id}-{token}", pure=False)
               for t in tasks]
    by_key = {f.key: t for f, t in zip(futures, tasks)}
    try:
        for future in dask_completed(futures, loop=client.loop):
            task = by_key[future.key]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. snnkit missing on a worker
                outcome = Outcome(task.run_id, False, 0.0, f"worker error: {type(exc).__name__}: {exc}")
            finish(outcome)
    except BaseException:
        client.cancel(futures)  # runs in progress finish on the workers and are dropped
        raise


# ------------------------------------------------------------------------------ tables


def flatten(results: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The scalars of a results.json object; nested dicts become ``outer.inner`` (as in
    the bands). Lists are left out: a row holds one number per column.

    ``flatten({"a": 1, "b": {"4": 0.5}, "c": [1, 2], "d": "x"})`` ->
    ``{"a": 1, "b.4": 0.5, "d": "x"}``.
    """
    flat: dict[str, Any] = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif not isinstance(value, (list, tuple)):
            flat[name] = value
    return flat


def _cell(value: Any) -> Any:
    """A grid value as a table cell: lists as their JSON text, so that they group."""
    if isinstance(value, (list, tuple)):
        return json.dumps(_jsonish(value))
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
        record = _read_json(out / point.run_id / runner.RUN_RECORD) or {}
        results = _read_json(out / point.run_id / "results.json") or {}
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
    _write_text(out / TABLE_NAME, table.to_csv(index=False))
    _write_text(out / SUMMARY_NAME, summary.to_csv(index=False))


def read_table(out: str | os.PathLike[str]) -> Any:
    """``out/sweep.csv`` as a DataFrame."""
    import pandas as pd

    return pd.read_csv(Path(out) / TABLE_NAME)


# -------------------------------------------------------------------------- statistics


class Interval(NamedTuple):
    """Mean of a sample with its Student t confidence interval.

    Attributes:
        n: sample size (missing values dropped).
        mean: sample mean (NaN for n = 0).
        std: sample standard deviation with ``ddof=1`` (NaN for n < 2).
        low, high: the interval ``mean -/+ t_{(1+c)/2, n-1} * std / sqrt(n)``
            (NaN for n < 2: one run says nothing about the spread).
    """

    n: int
    mean: float
    std: float
    low: float
    high: float


def mean_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """The mean of ``values`` and its ``confidence`` Student t interval.

    Example: ``[1, 2, 3, 4]`` gives mean 2.5, std ``sqrt(5/3)`` = 1.2910 and, with
    ``t_{0.975, 3}`` = 3.1824, the interval 2.5 -/+ 2.0543.

    Raises:
        ValueError: ``confidence`` not in (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r}: expected a number in (0, 1)")
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    n = len(xs)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(1, mean, math.nan, math.nan, math.nan)
    from scipy import stats

    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(n, mean, std, mean - half, mean + half)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) or \
        (hasattr(x, "dtype") and getattr(x.dtype, "kind", "") in "iuf")


def numeric_columns(table: Any, exclude: Iterable[str] = ()) -> list[str]:
    """Columns whose values are all numbers (missing allowed, booleans not)."""
    skip = set(exclude)
    cols = []
    for col in table.columns:
        if col in skip:
            continue
        values = [v for v in table[col].tolist() if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if values and all(_is_number(v) for v in values):
            cols.append(col)
    return cols


def _groups(table: Any, by: Sequence[str]) -> list[tuple[dict[str, Any], Any]]:
    """(grid values, rows) per distinct combination of ``by``, in first-seen order."""
    if not by:
        return [({}, table)]
    out = []
    for key, rows in table.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append((dict(zip(by, key)), rows))
    return out


def summarize(table: Any, by: Sequence[str], metrics: Sequence[str] | None = None,
              confidence: float = 0.95) -> Any:
    """Per grid point and number: n, mean, std and the Student t interval.

    Args:
        table: one row per run (see :func:`collect_table`).
        by: the grid parameters (rows with equal values are one grid point).
        metrics: the numbers to summarise (default: every numeric column but the grid
            parameters and ``seed``, including ``run_seconds``).
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
    for key, group in _groups(table, by):
        for metric in metrics:
            iv = mean_interval(group[metric].tolist(), confidence)
            rows.append({**key, "metric": metric, "n": iv.n, "mean": iv.mean, "std": iv.std,
                         "ci_low": iv.low, "ci_high": iv.high})
    return pd.DataFrame(rows, columns=[*by, "metric", "n", "mean", "std", "ci_low", "ci_high"])


def paired_difference(table: Any, a: str, b: str, by: Sequence[str] = (),
                      confidence: float = 0.95) -> Any:
    """Mean of ``a - b`` over runs that recorded both, with a paired t interval.

    Each run gives one difference (e.g. ``accuracy_final_gradual`` minus
    ``accuracy_final_direct`` on the same model and data), so the run-to-run noise they
    share cancels. Example: a = [0.9, 0.8, 0.85], b = [0.8, 0.8, 0.75] give differences
    [0.1, 0, 0.1], mean 0.0667, std 0.0577 and, with ``t_{0.975, 2}`` = 4.3027, the
    interval [-0.0768, 0.2101]: not a finding at n = 3.

    Args:
        table: one row per run.
        a, b: the two columns.
        by: grid parameters to compare within (default: all runs together).
        confidence: the interval's level.

    Returns:
        A DataFrame with columns ``*by, a, b, n, mean_a, mean_b, mean_diff, std_diff,
        ci_low, ci_high, t, p_value`` (two-sided p of the paired t test). With n < 2 the
        spread, interval, t and p are NaN; with every difference equal, the interval is
        that difference and t, p are NaN.

    Raises:
        ValueError: a column that is not in the table, naming the numeric ones.
    """
    import pandas as pd
    from scipy import stats

    for col in (a, b):
        if col not in table.columns:
            choices = ", ".join(numeric_columns(table, exclude=[*by, "seed", "run_id"]))
            raise ValueError(f"{col!r} is not a column of the sweep table; numbers recorded: "
                             f"{choices or 'none'}")
    rows = []
    for key, group in _groups(table, list(by)):
        pairs = [(float(x), float(y)) for x, y in zip(group[a].tolist(), group[b].tolist())
                 if _is_number(x) and _is_number(y) and not (math.isnan(float(x)) or math.isnan(float(y)))]
        diffs = [x - y for x, y in pairs]
        iv = mean_interval(diffs, confidence)
        t_stat = p_value = math.nan
        low, high = iv.low, iv.high
        if iv.n >= 2 and iv.std > 0:
            t_stat = iv.mean / (iv.std / math.sqrt(iv.n))
            p_value = float(2 * stats.t.sf(abs(t_stat), iv.n - 1))
        elif iv.n >= 2:
            low = high = iv.mean
        rows.append({**key, "a": a, "b": b, "n": iv.n,
                     "mean_a": math.fsum(x for x, _ in pairs) / iv.n if iv.n else math.nan,
                     "mean_b": math.fsum(y for _, y in pairs) / iv.n if iv.n else math.nan,
                     "mean_diff": iv.mean, "std_diff": iv.std, "ci_low": low, "ci_high": high,
                     "t": t_stat, "p_value": p_value})
    return pd.DataFrame(rows, columns=[*by, "a", "b", "n", "mean_a", "mean_b", "mean_diff",
                                       "std_diff", "ci_low", "ci_high", "t", "p_value"])


def plot_summary(table: Any, x: str, metrics: Sequence[str], hue: Sequence[str] = (),
                 confidence: float = 0.95) -> Any:
    """Each of ``metrics`` against the grid parameter ``x``: the mean over seeds with its
    Student t interval (the same numbers as :func:`summarize`), one panel per metric.

    Args:
        table: one row per run.
        x: a grid parameter (its values are categories, in table order).
        metrics: numeric columns to plot.
        hue: other grid parameters; each combination of their values is one line.
        confidence: the interval's level.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: a column that is not in the table.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    missing = [c for c in (x, *metrics, *hue) if c not in table.columns]
    if missing:
        raise ValueError(f"{', '.join(map(repr, missing))}: not in the sweep table; columns: "
                         f"{', '.join(map(str, table.columns))}")
    if not metrics:
        raise ValueError("metrics: expected at least one number to plot")
    data = table.copy()
    data[x] = data[x].map(str)
    order = list(dict.fromkeys(data[x]))
    hue_col = None
    if hue:
        hue_col = ", ".join(hue)
        data[hue_col] = data[list(hue)].apply(
            lambda r: ", ".join(f"{h}={r[h]}" for h in hue), axis=1)
    n = data.groupby([x, *hue]).size() if len(data) else None
    seeds = (f"{int(n.min())}" if n.min() == n.max() else f"{int(n.min())}-{int(n.max())}") \
        if n is not None else "0"

    def interval(values: Any) -> tuple[float, float]:
        iv = mean_interval(list(values), confidence)
        return iv.low, iv.high

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sns.pointplot(data=data, x=x, y=metric, hue=hue_col, order=order, errorbar=interval,
                      dodge=0.3 if hue_col and data[hue_col].nunique() > 1 else False,
                      capsize=0.15, ax=ax)
        ax.set_title(metric)
    fig.suptitle(f"mean and {confidence:.0%} t-interval over {seeds} seed(s) per point", fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Save a figure as PNG atomically (150 dpi) and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    path = Path(path)
    _atomic_write_bytes(path, buf.getvalue())
    return path


# ------------------------------------------------------------------------------ report


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return str(x)


def format_summary(summary: Any, metrics: Sequence[str], by: Sequence[str]) -> str:
    """Lines ``grid values  metric  mean [low, high]  (n=...)`` for the given metrics."""
    lines = []
    rows = summary[summary["metric"].isin(list(metrics))] if len(summary) else summary
    for _, r in rows.iterrows():
        where = ", ".join(f"{b}={r[b]}" for b in by) or "all runs"
        lines.append(f"  {where}  {r['metric']}: {_fmt(r['mean'])} "
                     f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]  (n={r['n']})")
    return "\n".join(lines)


def format_failure(outcome: Outcome, out: Path) -> str:
    """A failed point: its run id, cell and error, and where the executed copy is."""
    lines = [f"FAILED {outcome.run_id}" + (f" (on {outcome.host})" if outcome.host else "")]
    lines += [f"  {line}" for line in (outcome.error or "").splitlines()]
    folder = Path(outcome.folder) if outcome.folder else out / f"{outcome.run_id}.failed"
    if folder.is_dir():
        lines.append(f"  executed copy and partial results: {folder}")
    return "\n".join(lines)
