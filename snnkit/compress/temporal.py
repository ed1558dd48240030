"""Temporal pruning: lowering the number of time steps T (the latency) as a schedule.

Chowdhury, Garg and Roy (2021) cut T gradually: a network trained at a large T is
fine-tuned for a few epochs at a smaller T, starting from the previous step's weights,
then at a smaller T again, and so on (e.g. 100 -> 50 -> 25). Each step only has to adapt
to a modest change in how many spikes reach each layer; the paper reports that accuracy
survives a lower final T than with training directly at that T. :func:`direct` is that
comparison (on digits the kit's notebook finds no such advantage)::

    steps = gradual(snn, data, schedule=[25, 15, 10, 5, 3], epochs_per_step=2, cfg=cfg)
    abrupt = direct(copy_of_start, data, T=3, epochs=10, cfg=cfg)

A schedule is a pure list of time steps; :func:`check_schedule` validates it.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from torch import nn

from ..train import TrainConfig, evaluate, fit

__all__ = ["StepResult", "check_schedule", "gradual", "direct"]


@dataclass(frozen=True)
class StepResult:
    """One training step of a temporal schedule.

    Attributes:
        T: time steps used in this step (the latency, in steps).
        epochs: epochs trained at this T.
        val_acc: validation accuracy after the step, a fraction in [0, 1] (NaN without a
            validation split).
        test_acc: test accuracy after the step, in [0, 1] (NaN without a test split).
        seconds: wall time of the step (training and evaluation), in seconds.
    """

    T: int
    epochs: int
    val_acc: float
    test_acc: float
    seconds: float


def check_schedule(schedule: Sequence[int], name: str = "schedule") -> list[int]:
    """Return ``schedule`` as a list of ints after checking it.

    Accepted: a non-empty sequence of integers >= 1 that never increases (equal
    neighbours are allowed: more epochs at the same T). ``name`` is how error messages
    call it (e.g. a notebook parameter's name).

    Raises:
        ValueError: naming the offending value and what is accepted.
    """
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence):
        raise ValueError(f"{name}={schedule!r}: expected a non-empty list of time steps, e.g. [25, 15, 10, 5]")
    if len(schedule) == 0:
        raise ValueError(f"{name}=[]: expected a non-empty list of time steps, e.g. [25, 15, 10, 5]")
    out = []
    for i, T in enumerate(schedule):
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"{name}[{i}]={T!r}: expected an integer >= 1 (time steps)")
        if out and T > out[-1]:
            raise ValueError(
                f"{name}[{i}]={T} is larger than {name}[{i - 1}]={out[-1]}: expected a non-increasing schedule"
            )
        out.append(int(T))
    return out


def _epochs_list(epochs_per_step: int | Sequence[int], n: int) -> list[int]:
    if isinstance(epochs_per_step, int) and not isinstance(epochs_per_step, bool):
        epochs = [epochs_per_step] * n
    else:
        epochs = list(epochs_per_step)
        if len(epochs) != n:
            raise ValueError(f"epochs_per_step={epochs_per_step!r}: expected one integer or {n} (one per step)")
    for e in epochs:
        if isinstance(e, bool) or not isinstance(e, int) or e < 0:
            raise ValueError(f"epochs_per_step entry {e!r}: expected an integer >= 0")
    return epochs


def _split(data, name: str, given):
    return given if given is not None else getattr(data, name, None)


def _accuracy(model: nn.Module, split, cfg: TrainConfig) -> float:
    return evaluate(model, split, cfg) if split is not None else float("nan")


def _train_at(model: nn.Module, data, T: int, epochs: int, cfg: TrainConfig, seed: int, val, test,
              desc: str) -> StepResult:
    t0 = time.perf_counter()
    step_cfg = cfg.replace(T=T, epochs=epochs, seed=seed)
    if epochs > 0:
        # validation is done once after the step, not after every epoch
        fit(model, getattr(data, "train", data), step_cfg, val=None, desc=desc)
    return StepResult(T, epochs, _accuracy(model, val, step_cfg), _accuracy(model, test, step_cfg),
                      time.perf_counter() - t0)


def gradual(
    model: nn.Module,
    data,
    schedule: Sequence[int] = (25, 15, 10, 5, 3),
    epochs_per_step: int | Sequence[int] = 2,
    cfg: TrainConfig | None = None,
    *,
    val=None,
    test=None,
    on_step: Callable[[StepResult, nn.Module], None] | None = None,
) -> list[StepResult]:
    """Lower T step by step, fine-tuning ``model`` in place at every T of ``schedule``.

    Each step trains ``epochs_per_step`` epochs at its T (a fresh optimiser and cosine
    schedule from ``cfg.lr``, the data order seeded by ``cfg.seed + step index``), starting
    from the weights the previous step left, then measures validation and test accuracy at
    that T. A step with 0 epochs only evaluates (e.g. the first T, at which the model was
    already trained).

    Args:
        model: a spiking network; trained in place (deep-copy it first to keep the start).
        data: a :class:`~snnkit.data.Dataset` (its train, val and test splits are used) or a
            training :class:`~snnkit.data.Split` (then pass ``val``/``test``).
        schedule: time steps, non-empty, each >= 1, non-increasing.
        epochs_per_step: one integer >= 0 for every step, or one per step.
        cfg: training settings (its ``T`` and ``epochs`` are replaced per step).
        val, test: splits to evaluate (default ``data.val`` / ``data.test``).
        on_step: called as ``on_step(result, model)`` after every step (e.g. to checkpoint).

    Returns:
        One :class:`StepResult` per step, in schedule order.
    """
    schedule = check_schedule(schedule)
    epochs = _epochs_list(epochs_per_step, len(schedule))
    cfg = cfg or TrainConfig(progress=False)
    val, test = _split(data, "val", val), _split(data, "test", test)
    results = []
    for i, (T, e) in enumerate(zip(schedule, epochs)):
        res = _train_at(model, data, T, e, cfg, cfg.seed + i, val, test, desc=f"T={T}")
        results.append(res)
        if on_step is not None:
            on_step(res, model)
    return results


def direct(
    model: nn.Module | Callable[[], nn.Module],
    data,
    T: int,
    epochs: int,
    cfg: TrainConfig | None = None,
    *,
    val=None,
    test=None,
    copy_model: bool = False,
) -> StepResult:
    """Train directly at ``T`` for ``epochs`` epochs: the abrupt baseline of :func:`gradual`.

    For a fair comparison start from the same weights as the gradual schedule and give the
    same total number of epochs (``sum`` of its epochs per step).

    Args:
        model: a spiking network (trained in place unless ``copy_model``) or a factory
            returning a fresh one (whose trained weights are then not returned: pass a
            model to keep them).
        data, cfg, val, test: as in :func:`gradual`.
        T: the final time steps, an integer >= 1.
        epochs: epochs to train, an integer >= 0.
        copy_model: train a deep copy of ``model`` and leave the given one untouched.

    Returns:
        A :class:`StepResult` at ``T``.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T={T!r}: expected an integer >= 1 (time steps)")
    _epochs_list(epochs, 1)
    if not isinstance(model, nn.Module):
        if not callable(model):
            raise ValueError(f"model={model!r}: expected an nn.Module or a function returning one")
        model = model()
    elif copy_model:
        model = copy.deepcopy(model)
    cfg = cfg or TrainConfig(progress=False)
    val, test = _split(data, "val", val), _split(data, "test", test)
    return _train_at(model, data, T, epochs, cfg, cfg.seed, val, test, desc=f"direct T={T}")
