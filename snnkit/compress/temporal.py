"""Temporal pruning: lowering the number of time steps T (the latency).

Chowdhury, Garg and Roy (2021) cut T gradually: a network trained at a large T is
fine-tuned for a few epochs at a smaller T, starting from the previous step's weights,
then at a smaller T again, and so on (e.g. 100 -> 50 -> 25). Each step only has to adapt
to a modest change in how many spikes reach each layer; the paper reports that accuracy
survives a lower final T than with training directly at that T (the ``"dense"`` method at
the final T is that comparison; on digits the kit's notebook finds no such advantage)::

    steps = compress(snn, data, "gradual", cfg, schedule=[25, 15, 10, 5], first_epochs=0, evaluate=True)
    [(s.T, s.test_acc) for s in steps.history]
    abrupt = compress(start, data, "dense", cfg.replace(T=5, epochs=9), evaluate=True)

A schedule is a pure list of time steps; :func:`check_schedule` validates it.

Gou et al. (2025) choose the lower T from the data instead of a schedule: the smallest t
at which the output averaged over the first t steps is, by the KL divergence to the
labels, as good as it gets (min-max normalised below a threshold); see :func:`kl_by_timesteps`,
:func:`choose_timesteps` and the ``"kl"`` method::

    run = compress(build(spec, seed=0), data, "kl", cfg.replace(T=10), threshold=0.01, evaluate=True)
    run.T, run.info["choice"].kl, run.history[0].test_acc, run.history[1].test_acc
"""
from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..encoding import model_input
from ..models import is_spiking
from ..recording import recording
from ..train import TrainConfig
from .core import METHODS, Compressed, Run

__all__ = ["KLChoice", "check_schedule", "choose_timesteps", "gradual", "kl", "kl_by_timesteps",
           "minmax_normalise"]


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


@METHODS.register("gradual")
def gradual(model: nn.Module, data, cfg: TrainConfig, run: Run, *, schedule: Sequence[int] = (25, 15, 10, 5, 3),
            first_epochs: int | None = None) -> Compressed:
    """Temporal pruning (Chowdhury et al. 2021): T lowered step by step along ``schedule``.

    Each step trains ``cfg.epochs`` epochs at its T (a fresh optimiser and cosine schedule
    from ``cfg.lr``, the data order seeded by ``cfg.seed + step index``), starting from the
    weights the previous step left. With ``evaluate=True`` every step ends with its
    validation and test accuracy at its T: the accuracy-against-T curve.

    Params:
        schedule: time steps, non-empty, each >= 1, non-increasing (:func:`check_schedule`).
        first_epochs: epochs at the first T instead of ``cfg.epochs`` (0: the model is
            trained at that T already; the step only measures it).

    Info:
        ``schedule``: the time steps, as ints.
    """
    schedule = check_schedule(schedule)
    if first_epochs is not None and (isinstance(first_epochs, bool) or not isinstance(first_epochs, int)
                                     or first_epochs < 0):
        raise ValueError(f"first_epochs={first_epochs!r}: expected an integer >= 0 or None")
    for i, T in enumerate(schedule):
        epochs = first_epochs if i == 0 and first_epochs is not None else cfg.epochs
        run.train(model, cfg.replace(T=T, epochs=epochs, seed=cfg.seed + i), f"T={T}")
    return run.result(model, schedule[-1], {"schedule": schedule})


# ---------------------------------------------------------------------------------------
# choosing T from the KL divergence (Gou et al. 2025)
#
# A network trained at T_full steps is run on the training set. For t = 1..T_full the
# outputs of the first t steps are averaged and compared with the target distribution
# (the one-hot label) by the KL divergence; the curve is min-max normalised and the
# smallest t whose normalised KL is below a threshold is chosen. The network is then
# trained and tested at that t (the authors' public code computes t and goes on training
# at T_full; here the chosen t is what the ``"kl"`` method trains at).


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
    if not is_spiking(model):
        raise ValueError("model is an ANN (spiking=False); the KL rule needs a spiking network's per-step output")
    cfg = (cfg or TrainConfig(progress=False)).replace(T=T)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    total = torch.zeros(T, dtype=torch.float64)
    n = 0
    steps = torch.arange(1, T + 1, dtype=torch.float64).view(T, 1, 1)
    with recording(model):
        for x, y in split.loader(cfg.batch_size * 2, shuffle=False):
            inp = model_input(x.to(cfg.device), T, cfg.encoding, generator=gen)
            out = model(inp).double().cpu()  # (T, B, K)
            if out.dim() != 3 or out.shape[0] != T:
                raise ValueError(f"model output of shape {tuple(out.shape)}: expected (T={T}, B, classes)")
            log_p = F.log_softmax(out.cumsum(0) / steps, dim=-1)  # (T, B, K): averaged over the first t steps
            target = F.one_hot(y, out.shape[-1]).double().expand_as(log_p)
            total += F.kl_div(log_p, target, reduction="none").sum(-1).sum(1)
            n += len(y)
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


@METHODS.register("kl")
def kl(model: nn.Module, data, cfg: TrainConfig, run: Run, *, threshold: float = 0.01, kl_split=None) -> Compressed:
    """The KL rule (Gou et al. 2025): T chosen from the data, then trained at it.

    1. A copy of ``model`` (untrained, say: ``build(spec, seed=s)``) is trained
       ``cfg.epochs`` epochs at ``T_full = cfg.T`` (the first step).
    2. Its KL curve over ``kl_split`` (default: the training split) gives the chosen T
       (:func:`kl_by_timesteps`, :func:`choose_timesteps` with ``threshold``).
    3. Another copy of ``model``, the same initial weights, is trained ``cfg.epochs`` epochs
       at the chosen T (the second step; the result).

    With ``evaluate=True`` the steps' test accuracies compare the full and the chosen T.

    Info:
        ``choice``: the :class:`KLChoice` (curve, threshold, T); ``full``: the network
        trained at ``T_full``.
    """
    threshold = _check_threshold(threshold)
    full = copy.deepcopy(model)
    run.train(full, cfg, f"T={cfg.T}")
    kl_split = kl_split if kl_split is not None else getattr(data, "train", data)
    choice = choose_timesteps(kl_by_timesteps(full, kl_split, cfg.T, cfg), threshold)
    run.train(model, cfg.replace(T=choice.T), f"T={choice.T}")
    return run.result(model, choice.T, {"choice": choice, "full": full})
