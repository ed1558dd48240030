"""Measured inference speed, and the dense operation count it is compared with.

A structured pruning that removes channels for real should make inference faster; how
much faster is a measurement, not a count. :func:`compare_speed` times two models on the
same input, alternating them so that both see the same machine load, and reports the
median of their per-pair time ratios::

    report = compare_speed(model, pruned, x, repeats=15, threads=1)
    report.speedup                       # median over pairs of (time of model / time of pruned)
    dense_macs(model, x) / dense_macs(pruned, x)   # the FLOPs reduction, for comparison

Timings depend on the machine and on whatever else runs on it: record them with the
thread count, and treat them as a benchmark, not as a number a test can pin down.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..models import is_spiking
from ..recording import recording

__all__ = ["SpeedReport", "compare_speed", "dense_macs", "time_inference"]


def dense_macs(model: nn.Module, x: Tensor) -> int:
    """Dense multiply-accumulates of one inference per sample, as a CPU computes them.

    Every Conv and Linear layer counts ``output elements x kernel size`` (zero-padding taps
    included: the CPU multiplies them too; ``in_channels / groups x kH x kW`` for a conv,
    ``in_features`` for a linear layer) at each of the T steps, whatever its input (spikes
    or not, zero weights or not). ``x`` is (T, B, ...) for an SNN, (B, ...) for an ANN (T = 1).
    """
    spiking = is_spiking(model)
    T, B = (int(x.shape[0]), int(x.shape[1])) if spiking else (1, int(x.shape[0]))
    if B < 1 or T < 1:
        raise ValueError(f"input of shape {tuple(x.shape)}: empty batch or no time steps")
    per_row: dict[nn.Module, int] = {}

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        kernel = module.in_features if isinstance(module, nn.Linear) else module.weight[0].numel()
        per_row[module] = output[0].numel() * kernel  # one sample at one step

    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    with recording(model, [(m, hook) for m in layers]):
        model(x[:, :1] if spiking else x[:1])
    return int(sum(per_row.values()) * T)


def _check_repeats(repeats: int, warmup: int, threads: int | None) -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}: expected an integer >= 1")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r}: expected an integer >= 0")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r}: expected None (leave torch's setting) or an integer >= 1")


def _timed(models: list[nn.Module], x: Tensor, repeats: int, warmup: int,
           threads: int | None) -> tuple[list[list[float]], int]:
    """Seconds of every timed pass of each model, the models taking turns; and the thread count."""
    _check_repeats(repeats, warmup, threads)
    before = torch.get_num_threads()
    times: list[list[float]] = [[] for _ in models]
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        used = torch.get_num_threads()
        with recording(models):
            for i in range(warmup + repeats):
                for k, m in enumerate(models):
                    t0 = time.perf_counter()
                    m(x)
                    if i >= warmup:
                        times[k].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return times, used


def time_inference(model: nn.Module, x: Tensor, *, repeats: int = 10, warmup: int = 2,
                   threads: int | None = None) -> list[float]:
    """Wall-clock seconds of ``repeats`` forward passes of ``model`` on ``x`` (eval mode,
    no gradients), after ``warmup`` untimed ones, with ``threads`` torch threads (None:
    the current setting). The model's training flag and torch's thread count are restored."""
    return _timed([model], x, repeats, warmup, threads)[0][0]


@dataclass
class SpeedReport:
    """Timings of two models on one input (seconds per forward pass of the whole batch).

    Attributes:
        times_a, times_b: every timed pass of model A (the reference) and model B.
        threads: torch threads during the measurement.
        batch_size: samples in the timed input.
    """

    times_a: list[float] = field(repr=False)
    times_b: list[float] = field(repr=False)
    threads: int
    batch_size: int

    @property
    def median_a(self) -> float:
        return statistics.median(self.times_a)

    @property
    def median_b(self) -> float:
        return statistics.median(self.times_b)

    @property
    def speedup(self) -> float:
        """How many times faster B runs than A: the median over pairs of ``time_a / time_b``.

        Each pair is one pass of A and the pass of B right after it, so a change of machine
        load between pairs cancels in the ratio; the median ignores a pair that another
        process slowed down on one side only.
        """
        return statistics.median(a / b for a, b in zip(self.times_a, self.times_b))

    def __repr__(self) -> str:
        return (f"SpeedReport(A {1e3 * self.median_a:.2f} ms, B {1e3 * self.median_b:.2f} ms, "
                f"speedup {self.speedup:.2f}x, {len(self.times_a)} passes each, {self.threads} thread(s), "
                f"batch {self.batch_size})")


def compare_speed(model_a: nn.Module, model_b: nn.Module, x: Tensor, *, repeats: int = 10, warmup: int = 2,
                  threads: int | None = None) -> SpeedReport:
    """Time ``model_a`` and ``model_b`` on the same input ``x``, alternating A, B, A, B, ...

    Alternating spreads any change in machine load over both models alike, and the
    speedup is the median of the per-pair ratios (:attr:`SpeedReport.speedup`). Both run in eval mode under
    ``torch.no_grad``; their training flags and torch's thread count are restored.

    Args:
        model_a, model_b: the reference (e.g. unpruned) and the candidate (e.g. pruned).
        x: the input, (T, B, ...) for an SNN.
        repeats: timed passes of each model.
        warmup: untimed passes of each model first (allocations, caches).
        threads: torch intra-op threads during the measurement (None: unchanged).
    """
    (times_a, times_b), used = _timed([model_a, model_b], x, repeats, warmup, threads)
    batch = int(x.shape[1]) if is_spiking(model_a) else int(x.shape[0])
    return SpeedReport(times_a=times_a, times_b=times_b, threads=used, batch_size=batch)
