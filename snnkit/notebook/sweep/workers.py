"""Running one point of a sweep: the task a worker receives, what it returns, and the
local process pool and Dask clients that run them."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import runner


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



def run_local(tasks: Sequence[Task], jobs: int, finish: Callable[[Outcome], None]) -> None:
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


def run_dask(client: Any, tasks: Sequence[Task], finish: Callable[[Outcome], None]) -> None:
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


def format_failure(outcome: Outcome, out: Path) -> str:
    """A failed point: its run id, cell and error, and where the executed copy is."""
    lines = [f"FAILED {outcome.run_id}" + (f" (on {outcome.host})" if outcome.host else "")]
    lines += [f"  {line}" for line in (outcome.error or "").splitlines()]
    folder = Path(outcome.folder) if outcome.folder else out / f"{outcome.run_id}.failed"
    if folder.is_dir():
        lines.append(f"  executed copy and partial results: {folder}")
    return "\n".join(lines)
