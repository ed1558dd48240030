"""What every benchmark here shares: round-robin timing, medians, the machine record, tables.

Timing is round-robin: every variant runs once per round, in turn, for ``repeats`` rounds,
so that a slow spell of a shared machine hits every variant alike; each variant's figure
is its median over the rounds, and every ratio printed is a ratio of two medians taken in
the same run. Inference timing of whole models reuses
:func:`snnkit.metrics.speed.compare_speed` where two models are compared; this module
times arbitrary step functions (training steps included).
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from typing import Callable, Iterator, Sequence

import torch
from torch.profiler import ProfilerActivity, profile as torch_profile

import snnkit

#: printed instead of a peer's row when the peer cannot be imported
INSTALL_HINT = "not installed: pip install -e .[bench]"


def round_robin(steps: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds of every timed call of each step function, the steps taking turns.

    Each step runs ``warmup`` untimed times first (allocations, caches, compilation),
    then once per round for ``repeats`` rounds, in the order given.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}: expected an integer >= 1")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r}: expected an integer >= 0")
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return times


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with ``n`` torch intra-op threads; the previous count is restored."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads={n!r}: expected an integer >= 1")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def per_second(times: Sequence[float], items: int) -> float:
    """``items`` divided by the median of ``times`` (seconds): e.g. samples/s."""
    return items / statistics.median(times)


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (``/proc/cpuinfo``), else the platform's."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int) -> dict:
    """What a number depends on: torch build and threads, CPU, load, the allocator tuning."""
    return {
        "torch": torch.__version__,
        "threads": threads,
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "malloc_tuned": bool(snnkit._alloc.applied),
        "cuda": torch.cuda.is_available(),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: the first column and a last "note" column left-aligned, others right-aligned."""
    left = {0} | ({len(headers) - 1} if headers and headers[-1] == "note" else set())
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    width = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i in left else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, width))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in width))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def profile(step: Callable[[], object], calls: int = 5, row_limit: int = 15) -> str:
    """torch.profiler's table of operators (self CPU time) over ``calls`` calls of ``step``."""
    step()  # warm
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit)


def self_times(steps: dict[str, Callable[[], object]], rounds: int = 5) -> dict[str, list[dict[str, float]]]:
    """torch.profiler's self CPU time of every operator, in ms, per call of each step function.

    The steps take turns (one profiled call of each per round, after one untimed call of
    each), so that a slow spell of a shared machine hits every step alike. Returns, per step,
    one ``{operator: ms}`` dict per round.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds={rounds!r}: expected an integer >= 1")
    for step in steps.values():
        step()
    out: dict[str, list[dict[str, float]]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
            out[name].append({e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()})
    return out


def write_json(path: str | os.PathLike | None, result: dict) -> None:
    """Write ``result`` to ``path`` (folders created) unless ``path`` is None."""
    if path is None:
        return
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
