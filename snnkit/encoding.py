"""Encoders that turn a batch into a spiking input of shape ``(T, B, ...)``.

* :func:`direct` -- the analog input repeated at every step (a stride-0 view, no copy).
* :func:`rate` -- Bernoulli spikes with probability equal to the input.
* :func:`latency` -- one spike per input, earlier for brighter inputs.
* :func:`events` -- event data ``(B, T0, 2, H, W)`` moved to time-first and cut to ``T`` steps.

:func:`encode` dispatches by name; :data:`ENCODERS` lists the names.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import torch

__all__ = ["ENCODERS", "direct", "encode", "events", "latency", "rate"]


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
    ``x``'s dtype, with mean firing rate ``x`` per step. Pass a seeded ``generator`` (on
    ``x``'s device) for reproducible spikes. Written with ``torch.bernoulli`` because
    ``snntorch.spikegen.rate`` takes no generator.
    """
    _check_T(T)
    p = x.clamp(0.0, 1.0).unsqueeze(0).expand(T, *x.shape)
    return torch.bernoulli(p, generator=generator)


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


# Uniform (x, T, generator) signature; only rate uses the generator.
_DISPATCH: dict[str, Callable[[torch.Tensor, int, torch.Generator | None], torch.Tensor]] = {
    "direct": lambda x, T, g: direct(x, T),
    "rate": lambda x, T, g: rate(x, T, generator=g),
    "latency": lambda x, T, g: latency(x, T),
    "events": lambda x, T, g: events(x, T),
}

ENCODERS: tuple[str, ...] = tuple(_DISPATCH)


def encode(name: str, x: torch.Tensor, T: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Encode ``x`` with the encoder called ``name`` (one of :data:`ENCODERS`) into ``(T, B, ...)``.

    ``generator`` is used by ``rate`` only; the others are deterministic.
    """
    if name not in _DISPATCH:
        raise ValueError(f"unknown encoder {name!r}; expected one of: {', '.join(ENCODERS)}")
    _check_T(T)
    return _DISPATCH[name](x, T, generator)
