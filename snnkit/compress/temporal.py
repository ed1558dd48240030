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

Gou et al. (2025) choose the lower T from the data instead of a schedule: the smallest t
at which the output averaged over the first t steps is, by the KL divergence to the
labels, as good as it gets (min-max normalised below a threshold); see :func:`kl_rule`::

    result = kl_rule(lambda: build(spec, seed=0), data, T_full=10, epochs=8, cfg=cfg)
    result.choice.T, result.full.test_acc, result.chosen.test_acc
"""
from __future__ import annotations

import copy
import numbers
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..encoding import model_input
from ..train import TrainConfig, evaluate, fit

__all__ = ["StepResult", "check_schedule", "gradual", "direct",
           "KLChoice", "KLRuleResult", "kl_by_timesteps", "minmax_normalise", "choose_timesteps", "kl_rule"]


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


# ---------------------------------------------------------------------------------------
# choosing T from the KL divergence (Gou et al. 2025)
#
# A network trained at T_full steps is run on the training set. For t = 1..T_full the
# outputs of the first t steps are averaged and compared with the target distribution
# (the one-hot label) by the KL divergence; the curve is min-max normalised and the
# smallest t whose normalised KL is below a threshold is chosen. The network is then
# trained and tested at that t (the authors' public code computes t and goes on training
# at T_full; here the chosen t is what :func:`kl_rule` trains at).


@dataclass(frozen=True)
class KLChoice:
    """The time steps chosen by the KL rule, with the curve it was chosen from.

    Attributes:
        T_full: the time steps the curve was measured up to.
        kl: ``(T_full,)`` mean KL divergence (nats) of the first t steps' averaged output
            to the target distribution, for t = 1..T_full (entry ``t - 1``).
        normalised: ``kl`` min-max normalised to [0, 1] across t.
        threshold: the normalised KL that t has to get below.
        T: the chosen time steps, the smallest t with ``normalised[t - 1] < threshold``.
    """

    T_full: int
    kl: torch.Tensor
    normalised: torch.Tensor
    threshold: float
    T: int

    @property
    def time_reduction(self) -> float:
        """Percentage of time steps removed: ``100 * (1 - T / T_full)``."""
        return 100.0 * (1.0 - self.T / self.T_full)


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold!r}: expected a number in (0, 1] (a min-max normalised KL)")
    return float(threshold)


@torch.no_grad()
def kl_by_timesteps(model: nn.Module, split, T: int, cfg: TrainConfig | None = None) -> torch.Tensor:
    """Mean KL divergence to the one-hot target of the output averaged over the first t steps.

    For every sample and t = 1..T: ``p_t = softmax(mean_{s <= t} out[s])`` and
    ``KL(target || p_t) = sum_k target_k * log(target_k / p_t,k)``, which for a one-hot
    target is ``-log p_t[y]``. A spiking network is causal (step s only sees frames 1..s),
    so one run over T steps gives every t: the first t outputs of that run are exactly
    the outputs of a run fed only the first t frames.

    Args:
        model: a spiking network whose output is (T, B, classes).
        split: a :class:`~snnkit.data.Split` (usually the training split).
        T: the largest number of time steps, an integer >= 1.
        cfg: batch size, encoding, device and seed of the input (its ``T`` is replaced).

    Returns:
        ``(T,)`` float64 tensor, entry ``t - 1`` the mean over the split for t, in nats.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T={T!r}: expected an integer >= 1 (time steps)")
    if not getattr(model, "spiking", True):
        raise ValueError("model is an ANN (spiking=False); the KL rule needs a spiking network's per-step output")
    cfg = (cfg or TrainConfig(progress=False)).replace(T=T)
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    total = torch.zeros(T, dtype=torch.float64)
    n = 0
    steps = torch.arange(1, T + 1, dtype=torch.float64).view(T, 1, 1)
    try:
        for x, y in split.loader(cfg.batch_size * 2, shuffle=False):
            inp = model_input(x.to(cfg.device), T, cfg.encoding, generator=gen)
            out = model(inp).double().cpu()  # (T, B, K)
            if out.dim() != 3 or out.shape[0] != T:
                raise ValueError(f"model output of shape {tuple(out.shape)}: expected (T={T}, B, classes)")
            log_p = F.log_softmax(out.cumsum(0) / steps, dim=-1)  # (T, B, K): averaged over the first t steps
            target = F.one_hot(y, out.shape[-1]).double().expand_as(log_p)
            total += F.kl_div(log_p, target, reduction="none").sum(-1).sum(1)
            n += len(y)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("split is empty; expected at least one sample")
    return total / n


def minmax_normalise(values: torch.Tensor) -> torch.Tensor:
    """``(v - min) / (max - min)`` over a 1-D tensor; all zeros when every value is the same."""
    values = torch.as_tensor(values, dtype=torch.float64)
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"values of shape {tuple(values.shape)}: expected a non-empty 1-D tensor")
    if not torch.isfinite(values).all():
        raise ValueError(f"values={values.tolist()}: expected finite numbers")
    lo, hi = values.min(), values.max()
    if hi == lo:
        return torch.zeros_like(values)
    return (values - lo) / (hi - lo)


def choose_timesteps(kl: torch.Tensor, threshold: float = 0.01) -> KLChoice:
    """The smallest t whose min-max normalised ``kl[t - 1]`` is below ``threshold``.

    ``kl`` is the ``(T_full,)`` curve of :func:`kl_by_timesteps`; ``threshold`` in (0, 1].
    The t with the lowest KL always qualifies (its normalised value is 0), so a choice
    always exists.
    """
    threshold = _check_threshold(threshold)
    kl = torch.as_tensor(kl, dtype=torch.float64)
    norm = minmax_normalise(kl)
    T = int(torch.nonzero(norm < threshold)[0, 0]) + 1
    return KLChoice(int(kl.numel()), kl, norm, threshold, T)


@dataclass(frozen=True)
class KLRuleResult:
    """What :func:`kl_rule` did: the choice, and accuracy at the full and at the chosen T.

    Attributes:
        choice: the :class:`KLChoice`, from the network trained at ``choice.T_full``.
        full: training at T_full and testing there.
        chosen: training at ``choice.T`` from the same initial weights, same epochs, and
            testing there.
    """

    choice: KLChoice
    full: StepResult
    chosen: StepResult


def kl_rule(
    make_model: Callable[[], nn.Module],
    data,
    T_full: int,
    epochs: int,
    cfg: TrainConfig | None = None,
    *,
    threshold: float = 0.01,
    kl_split=None,
    val=None,
    test=None,
    on_trained: Callable[[str, nn.Module], None] | None = None,
) -> KLRuleResult:
    """Choose T with the KL rule, then train and test at it.

    1. ``make_model()`` is trained ``epochs`` epochs at ``T_full`` and tested there.
    2. Its KL curve over ``kl_split`` (default: the training split) gives the chosen T
       (:func:`kl_by_timesteps`, :func:`choose_timesteps` with ``threshold``).
    3. A fresh ``make_model()`` (call it with a fixed seed inside, so both runs start from
       the same weights) is trained ``epochs`` epochs at the chosen T and tested there.

    Args:
        make_model: returns a new spiking network, the same initial weights every call.
        data: a :class:`~snnkit.data.Dataset` (or a training split with ``val``/``test``).
        T_full: the full time steps, an integer >= 1 (<= the frames of event data).
        epochs: training epochs of each run, an integer >= 0.
        cfg: training settings (``T`` and ``epochs`` are replaced).
        threshold: normalised KL to get below, in (0, 1].
        kl_split, val, test: splits (defaults from ``data``).
        on_trained: called as ``on_trained("full" | "chosen", model)`` after each training.
    """
    threshold = _check_threshold(threshold)
    cfg = cfg or TrainConfig(progress=False)
    val, test = _split(data, "val", val), _split(data, "test", test)
    kl_split = kl_split if kl_split is not None else getattr(data, "train", data)
    model = make_model()
    full = _train_at(model, data, T_full, epochs, cfg, cfg.seed, val, test, desc=f"T={T_full}")
    if on_trained is not None:
        on_trained("full", model)
    choice = choose_timesteps(kl_by_timesteps(model, kl_split, T_full, cfg), threshold)
    model = make_model()
    chosen = _train_at(model, data, choice.T, epochs, cfg, cfg.seed, val, test, desc=f"T={choice.T}")
    if on_trained is not None:
        on_trained("chosen", model)
    return KLRuleResult(choice, full, chosen)
