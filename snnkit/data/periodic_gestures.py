"""``event-gestures-hard``: periodic gestures in sensor noise, below the accuracy ceiling.

A generated stand-in for DVS128 Gesture made to leave room between methods: 12 classes,
several of them close (the same path at twice the frequency and half the amplitude, a
circle one way or the other), each gesture repeating over the clip (about 2.5 times; the
slower arm circles about 1.5 times) from a random phase, under background noise, hot pixels
and a distractor that moves through the scene. Because the motion repeats, later time steps
carry the same evidence again rather than new evidence or noise: a net that has seen one
cycle has seen the class, which is the setting in which choosing a smaller T can cost
little. The kit's small reference SNN stays below the ceiling on it (see ``data/README.md``).

The set is generated from a fixed data seed (``data_seed``), not from the run's seed, so
its test split is the same for every run; it is cached under ``<data folder>/cache/``.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np
import torch

from .cache import cached_arrays
from .containers import Dataset, Split, check_nonneg, check_positive_int
from .events import brightness_events

__all__ = ["PERIODIC_GESTURE_CLASSES", "load_event_gestures_hard", "periodic_gesture_clips"]

#: Class names of ``event-gestures-hard``, indexed by label.
PERIODIC_GESTURE_CLASSES = [
    "swing left-right",
    "swing up-down",
    "swing up-right",
    "swing down-right",
    "circle clockwise",
    "circle counter-clockwise",
    "clap",
    "two hands up-down",
    "pulse",
    "figure eight",
    "shake left-right",
    "shake up-down",
]

# arm circles go round at this fraction of the other gestures' pace (and are wider, see
# _hands): slower, each frame's trail bends enough to show which way the arm turns
_CIRCLE_PACE = 0.6
_CIRCLES = [PERIODIC_GESTURE_CLASSES.index(c) for c in ("circle clockwise", "circle counter-clockwise")]
_SUBSTEPS = 3  # intensity frames rendered per output frame: events of a frame form a trail
# Part of the cache key: raise it whenever the generator's output changes, so that clips
# cached by an older version are not read back as this one's.
_GENERATOR_VERSION = 1


def _hands(labels: torch.Tensor, theta: torch.Tensor, amp: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Offsets of the two hands and the ring radius of every gesture, in canvas fractions.

    Args:
        labels: ``(N,)`` indices into :data:`PERIODIC_GESTURE_CLASSES`.
        theta: ``(N, S)`` phase of the gesture at each rendered instant [rad].
        amp: ``(N, 1)`` amplitude [canvas fraction].

    Returns:
        ``dx1, dy1, dx2, dy2, rho, two`` each ``(N, S)``: hand 1 and hand 2 offsets from the
        gesture's centre (x right, y down), ring radius (0: blobs, not a ring) and 1 where
        the second hand is shown.

    Screen y points down, so a clockwise circle starting at the top sets off to the right.
    """
    s, c = torch.sin(theta), torch.cos(theta)
    z = torch.zeros_like(theta)
    gap = 0.2 + z  # half the distance between two hands
    diag = amp * s / math.sqrt(2)
    table = {
        "swing left-right": (amp * s, z),
        "swing up-down": (z, amp * s),
        "swing up-right": (diag, -diag),
        "swing down-right": (diag, diag),
        # arm circles, wider than the swings
        "circle clockwise": (1.4 * amp * s, -1.4 * amp * c),
        "circle counter-clockwise": (-1.4 * amp * s, -1.4 * amp * c),
        "figure eight": (amp * s, 0.5 * amp * torch.sin(2 * theta)),
        # the swing's path at twice the frequency and half the amplitude: the same speed
        "shake left-right": (0.5 * amp * torch.sin(2 * theta), z),
        "shake up-down": (z, 0.5 * amp * torch.sin(2 * theta)),
    }
    two_hands = {
        # (hand 1 x, hand 1 y, hand 2 x, hand 2 y)
        "clap": (-(gap + 0.6 * amp * s), z, gap + 0.6 * amp * s, z),
        "two hands up-down": (-gap, amp * s, gap, amp * s),
    }
    dx1, dy1, dx2, dy2, rho, two = (torch.zeros_like(theta) for _ in range(6))
    lab = labels.view(-1, 1).expand_as(theta)
    for k, name in enumerate(PERIODIC_GESTURE_CLASSES):
        m = lab == k
        if name in table:
            px, py = table[name]
            dx1[m], dy1[m] = px[m], py[m]
        elif name in two_hands:
            ax, ay, bx, by = two_hands[name]
            dx1[m], dy1[m], dx2[m], dy2[m] = ax[m], ay[m], bx[m], by[m]
            two[m] = 1.0
        elif name == "pulse":
            rho[m] = (0.16 + 0.5 * amp * (1 + s) / 2)[m]
    return dx1, dy1, dx2, dy2, rho, two


def _blob(grid: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Gaussian blobs on the pixel grid: ``(M, S)`` centres and widths [pixels] -> ``(M, S, H, W)`` in [0, 1].

    A 2-D Gaussian is the outer product of two 1-D ones, so it costs H + W exponentials per
    blob rather than H x W.
    """
    def profile(c: torch.Tensor) -> torch.Tensor:  # (M, S) -> (M, S, side)
        # capped exponent: far tails ~1e-22 rather than denormal floats, which are slow
        return torch.exp(-((grid - c[..., None]) ** 2 / (2 * width[..., None] ** 2)).clamp_(max=50.0))

    return profile(cy)[..., :, None] * profile(cx)[..., None, :]


def _ring(grid: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, radius: torch.Tensor,
          width: torch.Tensor) -> torch.Tensor:
    """Rings of Gaussian cross-section: ``(M, S)`` centres, radii and widths [pixels] -> ``(M, S, H, W)``."""
    size = grid.shape[0]
    d = torch.sqrt((grid.view(1, 1, 1, size) - cx[..., None, None]) ** 2
                   + (grid.view(1, 1, size, 1) - cy[..., None, None]) ** 2)
    return torch.exp(-((d - radius[..., None, None]) ** 2 / (2 * width[..., None, None] ** 2)).clamp_(max=50.0))


def periodic_gesture_clips(
    labels: torch.Tensor,
    *,
    timesteps: int,
    size: int,
    cycles: float,
    noise: float,
    distractor: float,
    threshold: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """Event clips of the given gestures: ``(N, timesteps, 2, size, size)`` float32 counts.

    What is drawn per clip from ``gen`` (fractions are of the canvas side):

    * the gesture: centre within +-0.12 of the middle, amplitude 0.14..0.2 (circles 1.4x
      wider), phase uniform, speed such that the clip holds ``cycles`` x 0.8..1.2
      repetitions (circles 0.6x as many), hand width 0.04..0.06, contrast 0.6..1 (peak
      intensity);
    * with probability ``distractor``, a second object crossing the scene in a straight
      line (start anywhere, 0.3..0.9 of the canvas per clip, width 0.04..0.1, contrast
      0.3..0.8), unrelated to the class;
    * background events at ``noise`` x 0.5..1.5 per pixel, polarity and step, and 0..4 hot
      pixels that fire at 0.3..0.6 per step.

    Each output frame sums the events of ``3`` intensity frames rendered in between, so a
    moving hand leaves a trail of ON events ahead and OFF events behind it, as binned DVS
    recordings do. Events come from :func:`~snnkit.data.events.brightness_events`.
    """
    n = labels.shape[0]
    steps = timesteps * _SUBSTEPS

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=gen)

    centre = 0.5 + uniform(-0.12, 0.12, n, 2)
    amp = uniform(0.14, 0.2, n, 1)
    phase = uniform(0.0, 2 * math.pi, n, 1)
    speed = cycles * uniform(0.8, 1.2, n, 1)
    width = uniform(0.04, 0.06, n, 1) * size
    contrast = uniform(0.6, 1.0, n, 1)
    has_distractor = (torch.rand(n, 1, generator=gen) < distractor).float()
    d_start = uniform(0.1, 0.9, n, 2)
    d_angle = uniform(0.0, 2 * math.pi, n, 1)
    d_travel = uniform(0.3, 0.9, n, 1)
    d_width = uniform(0.04, 0.1, n, 1) * size
    d_contrast = uniform(0.3, 0.8, n, 1)
    rate = noise * uniform(0.5, 1.5, n)
    n_hot = torch.randint(0, 5, (n,), generator=gen)
    hot_pixel = torch.randint(0, size * size, (n, 4), generator=gen)
    hot_rate = uniform(0.3, 0.6, n, 4) * (torch.arange(4).view(1, 4) < n_hot.view(n, 1)).float()

    u = torch.linspace(0.0, 1.0, steps + 1).view(1, -1)  # time through the clip, (1, S)
    circle = torch.isin(labels, torch.tensor(_CIRCLES)).view(n, 1)
    theta = phase + 2 * math.pi * speed * torch.where(circle, _CIRCLE_PACE, 1.0) * u  # (N, S)
    dx1, dy1, dx2, dy2, rho, two = _hands(labels, theta, amp)
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    cx, cy = centre[:, :1] * size, centre[:, 1:] * size  # pixels
    w = width.expand_as(theta)
    intensity = torch.zeros(n, steps + 1, size, size)
    # each part is drawn only on the clips that have it: rings, second hands, distractors
    ring = rho[:, 0] > 0
    blob = ~ring
    intensity[blob] = _blob(grid, cx[blob] + dx1[blob] * size, cy[blob] + dy1[blob] * size, w[blob])
    intensity[ring] = _ring(grid, cx[ring] + dx1[ring] * size, cy[ring] + dy1[ring] * size,
                            rho[ring] * size, w[ring])
    pair = two[:, 0] > 0
    intensity[pair] += _blob(grid, cx[pair] + dx2[pair] * size, cy[pair] + dy2[pair] * size, w[pair])
    intensity *= contrast[..., None, None]
    dist = has_distractor[:, 0] > 0
    xd = (d_start[:, :1] + d_travel * torch.cos(d_angle) * u) * size
    yd = (d_start[:, 1:] + d_travel * torch.sin(d_angle) * u) * size
    intensity[dist] += d_contrast[dist, :, None, None] * _blob(grid, xd[dist], yd[dist],
                                                              d_width[dist].expand(-1, steps + 1))
    fine = brightness_events(intensity, threshold)  # (N, steps, 2, H, W)
    x = fine.view(n, timesteps, _SUBSTEPS, 2, size, size).sum(2)
    x += torch.bernoulli(rate.view(n, 1, 1, 1, 1).expand_as(x), generator=gen)
    hot = torch.bernoulli(hot_rate.view(n, 1, 1, 4).expand(n, timesteps, 2, 4), generator=gen)
    flat = x.view(n, timesteps, 2, size * size)
    flat.scatter_add_(3, hot_pixel.view(n, 1, 1, 4).expand(n, timesteps, 2, 4), hot)
    return x


def _generate(data_seed: int, n_train: int, n_val: int, n_test: int, timesteps: int, size: int,
              cycles: float, noise: float, distractor: float, threshold: float) -> dict[str, np.ndarray]:
    """Clips of every split, class after class, generated in chunks; counts stored as uint8."""
    n_classes = len(PERIODIC_GESTURE_CLASSES)
    gen = torch.Generator().manual_seed(data_seed)
    out = {}
    for part, per_class in (("train", n_train), ("val", n_val), ("test", n_test)):
        y = torch.arange(n_classes).repeat(per_class)  # classes interleaved
        chunks = []
        for start in range(0, len(y), 64):  # keeps the rendered intensity frames small
            clips = periodic_gesture_clips(
                y[start:start + 64], timesteps=timesteps, size=size, cycles=cycles, noise=noise,
                distractor=distractor, threshold=threshold, gen=gen,
            )
            if clips.max() > 255:
                raise ValueError(f"a pixel holds {int(clips.max())} events in one step; raise threshold={threshold}")
            chunks.append(clips.to(torch.uint8))
        out[f"{part}_x"] = torch.cat(chunks).numpy()
        out[f"{part}_y"] = y.numpy().astype(np.int64)
    return out


def load_event_gestures_hard(
    seed: int,
    *,
    root: Path,
    timesteps: int = 16,
    size: int = 32,
    n_train: int = 90,
    n_val: int = 15,
    n_test: int = 45,
    cycles: float = 2.5,
    noise: float = 0.02,
    distractor: float = 0.5,
    threshold: float = 0.1,
    data_seed: int = 0,
) -> Dataset:
    """12 periodic gestures in sensor noise: a DVS128-Gesture stand-in below the ceiling.

    See :func:`periodic_gesture_clips` for what each clip holds and
    :data:`PERIODIC_GESTURE_CLASSES` for the classes. Per-sample shape
    ``(timesteps, 2, size, size)`` of ON/OFF event counts.

    The split is fixed: ``n_train`` / ``n_val`` / ``n_test`` clips of each class (default
    90 / 15 / 45, so 1080 / 180 / 540 in all; one test clip is 0.19 points), all generated
    from ``data_seed``, the same for every run ``seed`` (which is not used). The clips are
    cached under ``root/cache/`` after the first load.

    Args:
        timesteps: frames per clip (T).
        size: side of a frame [pixels], >= 16.
        n_train, n_val, n_test: clips of each class in each split.
        cycles: mean repetitions of the gesture over the clip (each clip x 0.8..1.2).
        noise: mean background event rate per pixel, polarity and step.
        distractor: probability that a clip holds a distractor object.
        threshold: contrast step of the sensor model (peak intensity of a hand <= 1).
        data_seed: the generator's seed.
    """
    for name, value in (("timesteps", timesteps), ("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        check_positive_int(name, value)
    if not isinstance(size, int) or isinstance(size, bool) or size < 16:
        raise ValueError(f"size={size!r} is not accepted; expected an int >= 16 (the side of a frame, pixels)")
    if isinstance(cycles, bool) or not isinstance(cycles, numbers.Real) or not cycles > 0:
        raise ValueError(f"cycles={cycles!r} is not accepted; expected a number > 0 (repetitions per clip)")
    check_nonneg("noise", noise)
    if not 0 <= noise <= 1 / 1.5:
        raise ValueError(f"noise={noise!r} is not accepted; expected a rate in [0, 0.67] (events per pixel and step)")
    if isinstance(distractor, bool) or not isinstance(distractor, numbers.Real) or not 0 <= distractor <= 1:
        raise ValueError(f"distractor={distractor!r} is not accepted; expected a probability in [0, 1]")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not threshold > 0:
        raise ValueError(f"threshold={threshold!r} is not accepted; expected a contrast step > 0")
    if not isinstance(data_seed, numbers.Integral) or isinstance(data_seed, bool) or data_seed < 0:
        raise ValueError(f"data_seed={data_seed!r} is not accepted; expected an int >= 0")
    options = dict(data_seed=int(data_seed), n_train=n_train, n_val=n_val, n_test=n_test, timesteps=timesteps,
                   size=size, cycles=float(cycles), noise=float(noise), distractor=float(distractor),
                   threshold=float(threshold))
    arrays = cached_arrays(root, "event-gestures-hard", {"generator": f"periodic_gesture_clips v{_GENERATOR_VERSION}", **options},
                           lambda: _generate(**options))
    splits = [Split(torch.from_numpy(arrays[f"{p}_x"]).float(), torch.from_numpy(arrays[f"{p}_y"]))
              for p in ("train", "val", "test")]
    classes = list(PERIODIC_GESTURE_CLASSES)
    return Dataset("event-gestures-hard", *splits, len(classes), "event", (timesteps, 2, size, size), classes)
