"""Encoders that turn a batch into a spiking input of shape ``(T, B, ...)``.

* :func:`direct` -- the analog input repeated at every step (a stride-0 view, no copy).
* :func:`rate` -- Bernoulli spikes with probability equal to the input.
* :func:`latency` -- one spike per input, earlier for brighter inputs.
* :func:`events` -- event data ``(B, T0, 2, H, W)`` moved to time-first and cut to ``T`` steps.

:func:`encode` dispatches by name (:data:`ENCODERS`). :func:`model_input` is the one path
by which a data batch, a number of time steps ``T`` and an encoding become a model's input:
the trainer, the importances, the metrics and temporal pruning all call it.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import torch

from .registry import Registry

__all__ = ["ENCODERS", "derived_seed", "direct", "encode", "events", "generator_on", "latency", "model_input", "rate"]


def _check_T(T: object) -> None:
    if not isinstance(T, numbers.Integral) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T={T!r} is not accepted; expected an int >= 1 (number of time steps)")


def direct(x: torch.Tensor, T: int) -> torch.Tensor:
    """Repeat the analog input ``x`` ``(B, ...)`` at every step: ``(T, B, ...)``.

    The result is ``x.unsqueeze(0).expand(T, *x.shape)``, a view with ``stride(0) == 0``
    and no copy. Models rely on this: when ``x.stride(0) == 0`` the first layer sees the
    same input at every step, so it is computed once. Do not write into the result.
    """
    _check_T(T)
    return x.unsqueeze(0).expand(T, *x.shape)


def rate(x: torch.Tensor, T: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli (rate) code: at each step each input spikes with probability ``x``.

    ``x`` ``(B, ...)`` is clamped to ``[0, 1]``; the result ``(T, B, ...)`` holds 0/1 in
    ``x``'s dtype, with mean firing rate ``x`` per step. Pass a seeded ``generator`` for
    reproducible spikes; a generator on another device than ``x`` (the trainer's CPU
    generator with ``x`` on a GPU) seeds one on ``x``'s device (:func:`generator_on`).
    Written with ``torch.bernoulli`` because ``snntorch.spikegen.rate`` takes no generator.
    """
    _check_T(T)
    p = x.clamp(0.0, 1.0).unsqueeze(0).expand(T, *x.shape)
    return torch.bernoulli(p, generator=generator_on(generator, x.device))


def derived_seed(generator: torch.Generator) -> int:
    """One draw from ``generator``: a seed in ``[0, 2**63)`` for a generator elsewhere."""
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=generator.device))


def generator_on(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """``generator`` itself when it draws on ``device`` (or is None); otherwise a generator
    on ``device`` seeded by :func:`derived_seed`, so that a seeded generator on the CPU still
    gives reproducible draws for tensors on a GPU (torch refuses a CPU generator there).
    The draws then differ from the CPU's: the two devices' generators are different algorithms."""
    if generator is None or generator.device == torch.device(device):
        return generator
    return torch.Generator(device=device).manual_seed(derived_seed(generator))


def latency(
    x: torch.Tensor,
    T: int,
    tau: float | None = None,
    threshold: float = 0.01,
    linear: bool = True,
) -> torch.Tensor:
    """Time-to-first-spike code: one spike per input, brighter inputs fire earlier.

    ``x`` ``(B, ...)`` is clamped to ``[0, 1]``. Inputs ``>= threshold`` fire exactly once,
    at step

    * ``linear=True``: ``round((1 - x) / (1 - threshold) * (T - 1))`` -- ``x = 1`` fires at
      step 0 and ``x = threshold`` at step ``T - 1``;
    * ``linear=False``: ``round(tau * ln(1 / x))``, the charging time of an RC neuron
      driven by ``x`` (in steps); ``tau=None`` picks ``(T - 1) / ln(1 / threshold)`` so
      that ``x = threshold`` fires at the last step. Later times are clamped to ``T - 1``
      so no input above threshold is lost.

    Inputs below ``threshold`` never fire. Returns ``(T, B, ...)`` 0/1 in ``x``'s dtype.
    Written here rather than with ``snntorch.spikegen.latency`` because that one makes
    sub-threshold inputs fire at the last step unless clipped and raises on
    out-of-range times; this version keeps both rules simple and explicit.
    """
    _check_T(T)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold={threshold} is not accepted; expected 0 < threshold < 1")
    x = x.clamp(0.0, 1.0)
    if linear:
        t = (1.0 - x) / (1.0 - threshold) * (T - 1)
    else:
        if tau is None:
            tau = (T - 1) / math.log(1.0 / threshold)
        if tau <= 0:
            raise ValueError(f"tau={tau} is not accepted; expected tau > 0 (in time steps)")
        t = tau * torch.log(1.0 / x.clamp(min=threshold))
    step = t.round().clamp(0, T - 1).long()
    fires = (x >= threshold).to(x.dtype)
    out = torch.zeros((T, *x.shape), dtype=x.dtype, device=x.device)
    return out.scatter_(0, step.unsqueeze(0), fires.unsqueeze(0))


def events(x: torch.Tensor, T: int | None = None) -> torch.Tensor:
    """Event-data batch ``(B, T0, 2, H, W)`` -> time-first ``(T, B, 2, H, W)``.

    Keeps the first ``T`` frames (all ``T0`` if ``T`` is None). The result is a transposed
    view of ``x``, not a copy.
    """
    if x.dim() < 2:
        raise ValueError(f"event batch must be (B, T0, ...), got shape {tuple(x.shape)}")
    t0 = x.shape[1]
    if T is None:
        T = t0
    _check_T(T)
    if T > t0:
        raise ValueError(f"T={T} exceeds the T0={t0} frames of the event data; expected T <= {t0}")
    return x[:, :T].transpose(0, 1)


#: name -> encoder with the uniform signature ``fn(x, T, generator) -> (T, B, ...)``;
#: only ``rate`` uses the generator.
ENCODERS: Registry[Callable[[torch.Tensor, int, torch.Generator | None], torch.Tensor]] = Registry("encoder")
ENCODERS.register("direct", lambda x, T, g: direct(x, T))
ENCODERS.register("rate", lambda x, T, g: rate(x, T, generator=g))
ENCODERS.register("latency", lambda x, T, g: latency(x, T))
ENCODERS.register("events", lambda x, T, g: events(x, T))


def encode(name: str, x: torch.Tensor, T: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Encode ``x`` with the encoder called ``name`` (one of :data:`ENCODERS`) into ``(T, B, ...)``.

    ``generator`` is used by ``rate`` only; the others are deterministic.
    """
    fn = ENCODERS.get(name)
    _check_T(T)
    return fn(x, T, generator)


def model_input(
    x: torch.Tensor,
    T: int,
    encoding: str = "direct",
    *,
    spiking: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Turn a data batch into a model's input.

    Static batches (B, C, H, W) are encoded with ``encoding`` to (T, B, C, H, W) for an SNN;
    event batches (B, T0, 2, H, W) become their first ``T`` frames (T, B, 2, H, W), whatever
    ``encoding`` says. An ANN (``spiking=False``) gets the static batch as is, or the event
    counts summed over time (B, 2, H, W); ``T`` is then ignored.
    """
    event = x.dim() == 5
    if not spiking:
        return x.sum(1) if event else x
    if event:
        return events(x, T)
    return encode(encoding, x, T, generator=generator)
