"""Generated event data: DVS-like ON/OFF event counts made from moving intensity frames.

* ``event-digits``: N-MNIST-like, the ``digits`` moved along three small saccades;
* ``event-gestures``: a DVS128-Gesture stand-in of 11 moving patterns whose class shows
  over time.

:func:`brightness_events` is the sensor model both use (and
:mod:`snnkit.data.periodic_gestures` too): a pixel fires an event whenever its intensity
moves a whole contrast threshold away from its reference.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from .containers import DIGIT_CLASSES, Dataset, check_nonneg, check_positive_int, splits_from_arrays
from .embedded import digit_images

__all__ = ["GESTURE_CLASSES", "brightness_events", "load_event_digits", "load_event_gestures"]

GESTURE_CLASSES = [
    "right",
    "left",
    "up",
    "down",
    "up-right",
    "down-left",
    "clockwise",
    "counter-clockwise",
    "wave",
    "expand",
    "contract",
]


def brightness_events(frames: torch.Tensor, threshold: float) -> torch.Tensor:
    """Turn intensity frames into DVS-like event counts.

    Each pixel remembers a reference intensity (the first frame). Whenever the current
    intensity has moved ``k`` whole thresholds above (below) the reference, the pixel
    emits ``k`` ON (OFF) events and moves its reference by ``k * threshold``, like a
    DVS pixel on a linear intensity scale. So the net count ``ON - OFF`` summed up to
    step ``t``, times ``threshold``, is within one threshold of ``frames[t] - frames[0]``.

    Args:
        frames: ``(N, T + 1, H, W)`` intensities (any unit); frame 0 is the reference.
        threshold: contrast step per event, in the same unit, > 0.

    Returns:
        ``(N, T, 2, H, W)`` float32 event counts; channel 0 = ON, 1 = OFF.
    """
    if threshold <= 0:
        raise ValueError(f"threshold={threshold} is not accepted; expected > 0")
    if frames.dim() != 4 or frames.shape[1] < 2:
        raise ValueError(f"frames must be (N, T+1, H, W) with T+1 >= 2, got {tuple(frames.shape)}")
    frames = frames.float()
    n, steps, h, w = frames.shape
    out = torch.empty(n, steps - 1, 2, h, w)
    ref = frames[:, 0].clone()
    for t in range(1, steps):
        # trunc toward zero: a partial threshold crossing does not fire yet
        k = torch.trunc((frames[:, t] - ref) / threshold)
        ref += k * threshold
        torch.clamp(k, min=0, out=out[:, t - 1, 0])
        torch.clamp(-k, min=0, out=out[:, t - 1, 1])
    return out


def _noise_events(shape: tuple[int, ...], rate: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Background events: one spurious event with probability ``rate`` (per sample) per pixel, polarity and step."""
    p = rate.view(-1, *([1] * (len(shape) - 1))).expand(shape)
    return torch.bernoulli(p, generator=gen)


def _translate(images: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Shift ``(M, 1, H, W)`` images by sub-pixel ``(dx, dy)`` pixels (x right, y down), bilinear, zero fill."""
    m, _, h, w = images.shape
    theta = torch.zeros(m, 2, 3)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    # The grid tells where each output pixel samples from, so a shift by +dx samples at x - dx;
    # one pixel is 2 / W in normalised coordinates (align_corners=False).
    theta[:, 0, 2] = -2.0 * dx / w
    theta[:, 1, 2] = -2.0 * dy / h
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# Saccade triangle of the event digits, in pixels (x right, y down): top, bottom-right,
# bottom-left, back to top -- three straight saccades as in N-MNIST.
_SACCADE_VERTICES = torch.tensor([[0.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [0.0, -1.0]])


def _saccade_offsets(steps: int) -> torch.Tensor:
    """``(steps + 1, 2)`` offsets along the closed triangle, the three saccades taking equal time."""
    s = torch.linspace(0.0, 3.0, steps + 1)  # saccade index + fraction
    seg = s.floor().clamp(max=2).long()
    frac = (s - seg).unsqueeze(1)
    return _SACCADE_VERTICES[seg] * (1 - frac) + _SACCADE_VERTICES[seg + 1] * frac


def load_event_digits(
    seed: int, *, size: int = 16, timesteps: int = 10, threshold: float = 0.1, noise: float = 0.005
) -> Dataset:
    """N-MNIST-like event version of ``digits``.

    Each digit, upsampled to ``size x size``, sits in the middle of a ``(size + 2)``
    square canvas (1 pixel of margin) and moves along three saccades forming a closed
    triangle (top -> bottom-right -> bottom-left -> top, at most 1 pixel from centre).
    The path is sampled at ``timesteps + 1`` instants; :func:`brightness_events` turns
    the frames into ON/OFF counts with a linear contrast ``threshold`` (intensity in
    [0, 1]). Per sample, from ``seed``: the saccade amplitude (x0.75..1) and background
    noise events (each pixel, polarity and step fires with probability ``noise``).
    Splits are those of ``digits`` for the same seed, sample for sample.

    Per-sample shape: ``(timesteps, 2, size + 2, size + 2)``.
    """
    check_positive_int("timesteps", timesteps)
    check_nonneg("noise", noise)
    images, y = digit_images(size)
    n, canvas = images.shape[0], size + 2
    images = F.pad(images, (1, 1, 1, 1))
    gen = torch.Generator().manual_seed(seed)
    amplitude = 0.75 + 0.25 * torch.rand(n, generator=gen)
    offsets = _saccade_offsets(timesteps).unsqueeze(0) * amplitude.view(n, 1, 1)  # (N, T+1, 2)
    frames = _translate(
        images.repeat_interleave(timesteps + 1, dim=0),
        offsets[..., 0].reshape(-1),
        offsets[..., 1].reshape(-1),
    ).view(n, timesteps + 1, canvas, canvas)
    x = brightness_events(frames, threshold)
    x += _noise_events(tuple(x.shape), torch.full((n,), float(noise)), gen)
    train, val, test = splits_from_arrays(x, y, seed)
    return Dataset(
        "event-digits", train, val, test, 10, "event",
        (timesteps, 2, canvas, canvas), list(DIGIT_CLASSES),
    )


# --------------------------------------------------------------------------- gestures


def _gesture_paths(labels: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Displacement ``(dx, dy)`` and ring radius ``rho`` of each gesture, in units of the canvas size.

    Args:
        labels: ``(N,)`` class indices into :data:`GESTURE_CLASSES`.
        s: ``(N, K)`` path parameter in [0, 1] (0 = start, 1 = full gesture).

    Blob classes share the start point and a ring's start radius is shared by ``expand``
    and ``contract``; right / clockwise / wave all set off to the right and left /
    counter-clockwise to the left, so the direction of travel alone does not decide.
    """
    n, k = s.shape
    dx = torch.zeros(n, k)
    dy = torch.zeros(n, k)
    rho = torch.zeros(n, k)
    L, R = 0.3, 0.15  # straight travel and circle radius
    lab = labels.view(n, 1).expand(n, k)
    theta = 2 * math.pi * s
    diag = L / math.sqrt(2)
    table: dict[str, tuple[torch.Tensor, torch.Tensor]] = {
        "right": (L * s, 0 * s),
        "left": (-L * s, 0 * s),
        "up": (0 * s, -L * s),
        "down": (0 * s, L * s),
        "up-right": (diag * s, -diag * s),
        "down-left": (-diag * s, diag * s),
        # start at the top of the circle: clockwise on screen (y down) sets off to the right
        "clockwise": (R * torch.sin(theta), R * (1 - torch.cos(theta))),
        "counter-clockwise": (-R * torch.sin(theta), R * (1 - torch.cos(theta))),
        "wave": (0.5 * L * torch.sin(theta), 0 * s),
    }
    for c, name in enumerate(GESTURE_CLASSES):
        m = lab == c
        if name in table:
            px, py = table[name]
            dx[m], dy[m] = px[m], py[m]
        elif name == "expand":
            rho[m] = (0.2 + 0.2 * s)[m]
        elif name == "contract":
            rho[m] = (0.2 - 0.16 * s)[m]
    return dx, dy, rho


def load_event_gestures(
    seed: int,
    *,
    timesteps: int = 20,
    size: int = 32,
    n_per_class: int = 60,
    noise: float = 0.01,
    threshold: float = 0.1,
    motion_end: float = 1.0,
) -> Dataset:
    """Stand-in for DVS128 Gesture: 11 classes of moving patterns, evidence building up over time.

    Classes (:data:`GESTURE_CLASSES`): a blob moving right, left, up, down, up-right,
    down-left, round a clockwise or counter-clockwise circle, or waving right-left-right,
    and a ring that expands or contracts.

    Why the first steps are ambiguous: every pattern first fades in where it stands
    (first 10 % of the time, no class information beyond blob-vs-ring), then moves with an
    ease-in (path parameter grows as ``u**1.5``) so early motion is small next to the
    noise, and classes share their starts (right / clockwise / wave all set off to the
    right; expand and contract start from the same ring). Cutting time steps therefore
    costs accuracy, as on the real data.

    Per sample, from ``seed``: start position (centre +- 6 % of ``size``), speed (the
    gesture completes 75..100 % of its path), blob/ring width (4..6 % of ``size``), and
    background noise rate (``noise`` x 0.5..1.5 per pixel, polarity and step).
    Frames are rendered at ``timesteps + 1`` instants and turned into ON/OFF counts with
    :func:`brightness_events` (peak intensity 1, contrast ``threshold``).

    ``motion_end`` (in (0, 1], default 1) is the fraction of the recording by which the
    whole gesture (fade-in and motion) is over; afterwards the pattern holds still, so
    only noise events follow, as when a person finishes a gesture and stands still. At 1
    evidence builds up until the last step; at 0.5 the second half adds nothing, which
    is the redundancy in time that temporal pruning can remove, built into the data. For
    redundancy that comes from the motion itself (gestures that repeat), use
    ``event-gestures-hard`` (:mod:`snnkit.data.periodic_gestures`).

    ``n_per_class`` samples of each class are split 70/10/20 % into train/val/test.
    Per-sample shape: ``(timesteps, 2, size, size)``.
    """
    check_positive_int("timesteps", timesteps)
    check_positive_int("n_per_class", n_per_class)
    check_nonneg("noise", noise)
    if isinstance(motion_end, bool) or not isinstance(motion_end, numbers.Real) or not 0 < motion_end <= 1:
        raise ValueError(f"motion_end={motion_end!r} is not accepted; expected a fraction of the recording in (0, 1]")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size={size!r} is not accepted; expected an int >= 8")
    n_classes = len(GESTURE_CLASSES)
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n_classes).repeat_interleave(n_per_class)
    n = y.shape[0]

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=gen)

    start = 0.5 + uniform(-0.06, 0.06, n, 2)  # fraction of the canvas
    speed = uniform(0.75, 1.0, n, 1)
    width = uniform(0.04, 0.06, n, 1, 1, 1) * size
    rate = noise * uniform(0.5, 1.5, n)

    # gesture time: 0 -> 1 over the first motion_end of the recording, then held at 1
    time = (torch.linspace(0.0, 1.0, timesteps + 1) / motion_end).clamp(max=1.0).unsqueeze(0)  # (1, T+1)
    onset = 0.1
    alpha = (time / onset).clamp(max=1.0)  # fade-in
    u = ((time - onset) / (1 - onset)).clamp(min=0.0)
    s = speed * u**1.5  # (N, T+1)
    dx, dy, rho = _gesture_paths(y, s)

    cx = (start[:, :1] + dx) * size  # (N, T+1) pixels
    cy = (start[:, 1:] + dy) * size
    grid = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    dist = torch.sqrt(
        (grid.view(1, 1, 1, size) - cx[..., None, None]) ** 2
        + (grid.view(1, 1, size, 1) - cy[..., None, None]) ** 2
    )  # (N, T+1, H, W)
    # The exponent is capped so far tails are ~1e-22 rather than denormal floats,
    # which would make every later operation on the frames many times slower.
    z = ((dist - rho[..., None, None] * size) ** 2 / (2 * width**2)).clamp_(max=50.0)
    frames = alpha[..., None, None] * torch.exp(-z)
    x = brightness_events(frames, threshold)
    x += _noise_events(tuple(x.shape), rate, gen)
    train, val, test = splits_from_arrays(x, y, seed)
    return Dataset(
        "event-gestures", train, val, test, n_classes, "event",
        (timesteps, 2, size, size), list(GESTURE_CLASSES),
    )
