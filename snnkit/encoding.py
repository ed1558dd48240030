"""Encoders that turn a batch into a spiking input of shape ``(T, B, ...)``.

* :func:`direct` -- the analog input repeated at every step (a stride-0 view, no copy).
* :func:`rate` -- Bernoulli spikes with probability equal to the input.
* :func:`latency` -- one spike per input, earlier for brighter inputs.
* :func:`events` -- event data ``(B, T0, 2, H, W)`` moved to time-first and cut to ``T`` steps.

:func:`encode` dispatches by name (:data:`ENCODERS`). :func:`model_input` is the one path
by which a data batch, a number of time steps ``T`` and an encoding become a model's input:
the trainer, the importances, the metrics and temporal pruning all call it.

Gaussian input noise (:class:`InputNoise`, :func:`add_noise`) is the first step of that
path when asked for: ``clamp(x + sigma * n, 0, 1)`` with ``n`` standard normal, drawn either
once per sample and kept over the ``T`` steps (``resample="sample"``), or afresh at every
step (``resample="step"``: the encoder then sees ``T`` different noisy images).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import torch

from .registry import Registry

__all__ = ["ENCODERS", "RESAMPLE", "STEP_ENCODINGS", "UNIT", "InputNoise", "add_noise", "derived_seed", "direct", "encode", "events",
           "generator_on", "latency", "model_input", "rate"]

#: The range noisy inputs are clamped to by default: intensities.
UNIT = (0.0, 1.0)

#: How often :class:`InputNoise` draws: once per sample (the same noisy image at every
#: step) or afresh at every time step.
RESAMPLE = ("sample", "step")

#: The encodings a per-step noisy input can take: each step's noisy image as it is, or
#: Bernoulli spikes of it.
STEP_ENCODINGS = ("direct", "rate")


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


def _check_clamp(clamp: tuple[float, float] | None) -> tuple[float, float] | None:
    if clamp is None:
        return None
    try:
        lo, hi = (float(v) for v in clamp)
    except (TypeError, ValueError):
        lo, hi = math.nan, math.nan
    if not lo < hi:
        raise ValueError(f"clamp={clamp!r}: expected None or (low, high) with low < high, e.g. (0.0, 1.0)")
    return lo, hi


def _check_sigma(sigma: object) -> float:
    if not (isinstance(sigma, numbers.Real) and not isinstance(sigma, bool) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma={sigma!r}: expected a finite number >= 0 (input units)")
    return float(sigma)


def add_noise(x: torch.Tensor, sigma: float, noise: torch.Tensor,
              clamp: tuple[float, float] | None = UNIT) -> torch.Tensor:
    """``clamp(x + sigma * noise, low, high)``, elementwise.

    ``noise`` is a standard-normal tensor of ``x``'s shape; ``sigma`` >= 0 (input units).
    ``clamp``: the inputs' range, (0, 1) for intensities; None adds the noise unclamped.
    ``sigma = 0`` returns ``x`` clamped, i.e. unchanged for inputs in the range.
    """
    sigma = _check_sigma(sigma)
    if noise.shape != x.shape:
        raise ValueError(f"noise of shape {tuple(noise.shape)}: expected the input's shape {tuple(x.shape)}")
    bounds = _check_clamp(clamp)
    noisy = x + sigma * noise
    return noisy if bounds is None else noisy.clamp(*bounds)


@dataclass(frozen=True)
class InputNoise:
    """Gaussian noise on a static analog input, added before it is encoded.

    Each noisy input is ``clamp(x + sigma * n, low, high)`` with ``n`` standard normal
    (:func:`add_noise`), drawn from a generator seeded by ``seed`` (:meth:`generator`), so
    the same seed gives the same draws; batches draw in turn from one generator, and every
    ``sigma`` scales the same draws.

    Attributes:
        sigma: the noise's standard deviation, >= 0, in input units (pixel intensity for
            images in [0, 1]). 0 is the clean input (clamped).
        resample: ``"sample"``: one draw per input value, the same noisy image at every
            time step (frozen noise; then encoded as usual with any encoding, and the only
            choice for an ANN, which has no time steps). ``"step"``: a fresh draw at every
            time step, so step ``t`` carries its own noisy image: with rate encoding the
            spikes of step ``t`` are Bernoulli draws of that step's noisy intensity, with
            direct encoding the input of step ``t`` is that noisy analog image (no longer
            the stride-0 repeat, so the first layer is computed at every step). Only for
            SNNs, with ``"direct"`` or ``"rate"`` encoding (:data:`STEP_ENCODINGS`).
        clamp: the range noisy inputs are clamped to, (0, 1) for intensities (:data:`UNIT`);
            None adds the noise unclamped (standardized data).
        seed: seeds the draws.
    """

    sigma: float
    resample: str = "sample"
    clamp: tuple[float, float] | None = UNIT
    seed: int = 0

    def __post_init__(self) -> None:
        _check_sigma(self.sigma)
        if self.resample not in RESAMPLE:
            raise ValueError(f"resample={self.resample!r}: expected one of {', '.join(RESAMPLE)} "
                             "(one draw per sample kept over the time steps, or a fresh draw at every step)")
        _check_clamp(self.clamp)
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool):
            raise ValueError(f"seed={self.seed!r}: expected an int")

    def generator(self) -> torch.Generator:
        """A CPU generator seeded by :attr:`seed`: pass it to every batch of one pass over the data."""
        return torch.Generator().manual_seed(int(self.seed))

    def apply(self, x: torch.Tensor, T: int | None, generator: torch.Generator | None) -> torch.Tensor:
        """The noisy analog input: ``x`` (B, ...) -> (B, ...) for ``"sample"`` (``T`` unused,
        may be None) or (T, B, ...) for ``"step"`` (one independent draw per step)."""
        shape = x.shape
        if self.resample == "step":
            _check_T(T)
            shape = (T, *x.shape)
            x = x.unsqueeze(0).expand(shape)
        gen = generator_on(generator, x.device)
        return add_noise(x, self.sigma, torch.randn(shape, generator=gen, dtype=x.dtype, device=x.device), self.clamp)


def _encode_steps(encoding: str, frames: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Encode ``frames`` (T, B, ...), one analog input per step: direct keeps them, rate
    draws Bernoulli spikes of each step's intensity (clamped to [0, 1])."""
    if encoding == "direct":
        return frames
    if encoding == "rate":
        return torch.bernoulli(frames.clamp(0.0, 1.0), generator=generator_on(generator, frames.device))
    raise ValueError(f"encoding={encoding!r} with noise drawn at every step: expected one of "
                     f"{', '.join(STEP_ENCODINGS)}, or InputNoise(resample='sample')")


def model_input(
    x: torch.Tensor,
    T: int,
    encoding: str = "direct",
    *,
    spiking: bool = True,
    generator: torch.Generator | None = None,
    noise: InputNoise | None = None,
    noise_generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Turn a data batch into a model's input.

    Static batches (B, C, H, W) are encoded with ``encoding`` to (T, B, C, H, W) for an SNN;
    event batches (B, T0, 2, H, W) become their first ``T`` frames (T, B, 2, H, W), whatever
    ``encoding`` says. An ANN (``spiking=False``) gets the static batch as is, or the event
    counts summed over time (B, 2, H, W); ``T`` is then ignored.

    ``noise`` adds Gaussian noise to a static batch first (:class:`InputNoise`; event data
    are refused), its draws from ``noise_generator`` (None: torch's global generator);
    ``generator`` draws the rate spikes. With ``noise.resample == "step"`` every time step
    gets its own noisy image, for an SNN with direct or rate encoding only.
    """
    event = x.dim() == 5
    if noise is not None:
        if event:
            raise ValueError(f"input of shape {tuple(x.shape)} with noise: Gaussian input noise is defined for static "
                             "images (B, C, H, W) and sequences (B, C, L), not for event data")
        if noise.resample == "step":
            if not spiking:
                raise ValueError("InputNoise(resample='step') draws fresh noise at every time step, and an ANN has "
                                 "none: use resample='sample' (one draw per input) for an ANN")
            if noise.sigma > 0:
                return _encode_steps(encoding, noise.apply(x, T, noise_generator), generator)
            # sigma 0: every step carries the clean image (clamped), encoded as without noise
            x = add_noise(x, 0.0, torch.zeros_like(x), noise.clamp)
        else:
            x = noise.apply(x, None, noise_generator)
    if not spiking:
        return x.sum(1) if event else x
    if event:
        return events(x, T)
    return encode(encoding, x, T, generator=generator)
