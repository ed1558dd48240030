"""In-memory data sets for the kit: real data offline, plus synthetic event data.

Every data set is held in memory as a :class:`Dataset` with three :class:`Split` s
(train / val / test). Static images are ``(N, C, H, W)`` float32 in ``[0, 1]``;
event data are ``(N, T, 2, H, W)`` float32 event counts (channel 0 = ON, 1 = OFF).
Time is the first *per-sample* dimension of event data; the encoders in
:mod:`snnkit.encoding` move it to the front of a batch, giving ``(T, B, ...)``.

Names accepted by :func:`load_dataset` (see :data:`DATASETS`):

* ``digits`` -- scikit-learn's bundled 8x8 handwritten digits (real, no files needed).
* ``event-digits`` -- an N-MNIST-like event version of ``digits`` (synthetic, no files).
* ``event-gestures`` -- a DVS128-Gesture stand-in of 11 moving patterns (synthetic, no files).
* ``mnist``, ``fashion-mnist``, ``cifar10`` -- real data read from local files.
* ``dvs-gesture``, ``n-mnist`` -- real event data read from local files through tonic.

Nothing is ever downloaded at run time. Local files live under ``root`` if given, else
``$SNNKIT_DATA``, else the repository's ``data/`` folder; ``data/README.md`` lists the
layouts and where to get each file.
"""

from __future__ import annotations

import gzip
import inspect
import math
import numbers
import os
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from .registry import Registry

__all__ = [
    "DATASETS",
    "LOADERS",
    "GESTURE_CLASSES",
    "Dataset",
    "Split",
    "brightness_events",
    "data_root",
    "describe",
    "events_to_frames",
    "load_dataset",
    "read_idx",
]

# Fractions of the fixed stratified split used by the data sets that ship without one.
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)

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

_DIGIT_CLASSES = [str(d) for d in range(10)]
_FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
_CIFAR_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]
_DVS_GESTURE_CLASSES = [
    "hand clapping", "right hand wave", "left hand wave", "right arm cw", "right arm ccw",
    "left arm cw", "left arm ccw", "arm roll", "air drums", "air guitar", "other gestures",
]


# --------------------------------------------------------------------------- containers


@dataclass
class Split:
    """One split held in memory.

    Attributes:
        x: static ``(N, C, H, W)`` float32 in ``[0, 1]``, or event ``(N, T, 2, H, W)``
            float32 event counts.
        y: ``(N,)`` int64 class indices.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}; they must match"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def loader(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """A DataLoader yielding ``(x, y)`` batches of shape ``(B, ...)`` and ``(B,)``.

        Shuffling draws from a local generator seeded with ``seed``, so two loaders built
        with the same seed visit the samples in the same order, epoch after epoch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(
            TensorDataset(self.x, self.y),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
        )

    def subset(self, n: int | None, seed: int = 0) -> "Split":
        """The first ``n`` samples of a seeded, class-stratified permutation.

        Classes are interleaved in proportion to their size, so any ``n`` keeps the class
        shares of the split (within one sample per class). The chosen samples keep their
        original order; ``n=None`` returns all samples.
        """
        if n is None:
            return Split(self.x, self.y)
        if not 1 <= n <= len(self):
            raise ValueError(f"subset size n={n} is out of range; expected 1..{len(self)} or None")
        order = _stratified_order(self.y.numpy(), seed)
        idx = torch.from_numpy(np.sort(order[:n]))
        return Split(self.x[idx], self.y[idx])


@dataclass
class Dataset:
    """A data set with its three splits and what a model needs to know about it.

    Attributes:
        name: the name given to :func:`load_dataset`.
        kind: ``"static"`` or ``"event"``.
        input_shape: per-sample shape, ``(C, H, W)`` for static, ``(T, 2, H, W)`` for event.
        classes: human-readable class names, indexed by label.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    kind: str
    input_shape: tuple[int, ...]
    classes: list[str] = field(default_factory=list)

    def subset(self, train: int | None = None, *, val: int | None = None, test: int | None = None,
               seed: int = 0) -> "Dataset":
        """The same data set with each split cut to at most ``train``/``val``/``test`` samples.

        ``None`` keeps a split whole, and a split smaller than its number is kept whole; each
        cut is stratified and seeded (:meth:`Split.subset`), so the same arguments give the
        same samples on every machine.
        """
        def cut(split: Split, n: int | None) -> Split:
            return split.subset(None if n is None else min(n, len(split)), seed=seed)

        return replace(self, train=cut(self.train, train), val=cut(self.val, val), test=cut(self.test, test))

    def binarized(self, threshold: float = 0.5) -> "Dataset":
        """The same data set with every input value turned into 1.0 above ``threshold``, else 0.0
        (binary images that a direct-input SNN reads as spikes)."""
        def cut(split: Split) -> Split:
            return Split((split.x > threshold).float(), split.y)

        return replace(self, train=cut(self.train), val=cut(self.val), test=cut(self.test))


def describe(ds: Dataset) -> str:
    """One-line summary, e.g. ``digits: static (1, 16, 16), 10 classes, train/val/test 1257/180/360``."""
    return (
        f"{ds.name}: {ds.kind} {tuple(ds.input_shape)}, {ds.num_classes} classes, "
        f"train/val/test {len(ds.train)}/{len(ds.val)}/{len(ds.test)}"
    )


# --------------------------------------------------------------------------- splitting


def _stratified_order(y: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of ``range(len(y))`` whose every prefix is class-balanced.

    Each class is shuffled, then sample ``r`` of a class of size ``n_c`` gets the key
    ``(r + 0.5) / n_c``; sorting by key interleaves classes in proportion to their size.
    """
    rng = np.random.default_rng(seed)
    keys = np.empty(len(y), dtype=np.float64)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    # A random tie-break stops the lowest class from always coming first.
    tie = rng.random(len(y))
    return np.lexsort((tie, keys))


def _stratified_split(
    y: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Split indices per class by ``fractions`` (summing to 1); each part sorted.

    Every part but the first gets ``round(fraction * n_c)`` of each class (at least one
    when the class is big enough to give every part one); the first part takes the rest,
    so no sample is lost to rounding.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        least = 1 if len(members) >= len(fractions) else 0
        sizes = [max(least, int(round(f * len(members)))) for f in fractions[1:]]
        cuts = np.cumsum([len(members) - sum(sizes), *sizes])[:-1]
        for part, chunk in zip(parts, np.split(members, cuts)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _splits_from_arrays(
    x: torch.Tensor, y: torch.Tensor, seed: int, fractions: tuple[float, ...] = SPLIT_FRACTIONS
) -> tuple[Split, Split, Split]:
    tr, va, te = _stratified_split(y.numpy(), fractions, seed)
    return tuple(Split(x[torch.from_numpy(i)], y[torch.from_numpy(i)]) for i in (tr, va, te))


def _carve_val(train: Split, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """Carve a stratified validation split out of a training split."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction} is out of range; expected 0 < val_fraction < 1")
    tr, va = _stratified_split(train.y.numpy(), (1.0 - val_fraction, val_fraction), seed)
    tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
    return Split(train.x[tr_t], train.y[tr_t]), Split(train.x[va_t], train.y[va_t])


# --------------------------------------------------------------------------- synthetic: digits


def _digit_images(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 digits as ``(N, 1, size, size)`` float32 in [0, 1] and ``(N,)`` labels."""
    from sklearn.datasets import load_digits

    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size={size!r} is not accepted; expected an int >= 8 (8 keeps the original)")
    bunch = load_digits()
    # Pixel values are integers 0..16 in the source.
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return x.clamp_(0.0, 1.0).contiguous(), y


def _load_digits(seed: int, *, size: int = 16) -> Dataset:
    """scikit-learn's handwritten digits, upsampled bilinearly to ``size x size``.

    Fixed stratified split from ``seed``: 70 % train, 10 % val, 20 % test of each class
    (1257 / 180 / 360 samples).
    """
    x, y = _digit_images(size)
    train, val, test = _splits_from_arrays(x, y, seed)
    return Dataset("digits", train, val, test, 10, "static", (1, size, size), list(_DIGIT_CLASSES))


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


def _load_event_digits(
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
    _check_positive_int("timesteps", timesteps)
    _check_nonneg("noise", noise)
    images, y = _digit_images(size)
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
    train, val, test = _splits_from_arrays(x, y, seed)
    return Dataset(
        "event-digits", train, val, test, 10, "event",
        (timesteps, 2, canvas, canvas), list(_DIGIT_CLASSES),
    )


# --------------------------------------------------------------------------- synthetic: gestures


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


def _load_event_gestures(
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
    is the redundancy in time that temporal pruning can remove.

    ``n_per_class`` samples of each class are split 70/10/20 % into train/val/test.
    Per-sample shape: ``(timesteps, 2, size, size)``.
    """
    _check_positive_int("timesteps", timesteps)
    _check_positive_int("n_per_class", n_per_class)
    _check_nonneg("noise", noise)
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
    train, val, test = _splits_from_arrays(x, y, seed)
    return Dataset(
        "event-gestures", train, val, test, n_classes, "event",
        (timesteps, 2, size, size), list(GESTURE_CLASSES),
    )


# --------------------------------------------------------------------------- local files


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Folder holding real data sets: ``root`` if given, else ``$SNNKIT_DATA``, else ``<repo>/data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("SNNKIT_DATA", Path(__file__).resolve().parent.parent / "data"))


def _missing(what: str, where: list[Path], source: str, layout: str) -> FileNotFoundError:
    places = ", ".join(str(p) for p in where)
    return FileNotFoundError(
        f"{what} not found in {places}. Get it from {source} and place it "
        f"as {layout} under the data folder (the root= argument, $SNNKIT_DATA, or the "
        f"repository's data/; see data/README.md). snnkit never downloads at run time."
    )


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or ``.gz``.

    Layout: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions,
    each dimension as a big-endian int32, then the data in C order.

    Raises:
        ValueError: naming the file, when the magic number is wrong or the data are truncated.
    """
    path = Path(path)
    try:
        opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # a corrupt gzip stream
        raise ValueError(f"cannot read IDX file '{path}': {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"corrupt IDX file '{path}': bad magic number {raw[:4].hex() or '(empty)'}; "
            f"expected 0000 followed by a type code and the number of dimensions"
        )
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"corrupt IDX file '{path}': truncated header ({len(raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"corrupt IDX file '{path}': expected {expected} data bytes for shape {shape}, "
            f"found {len(raw) - header} (truncated or wrong file)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
# name -> (folders tried under root, official source, class names)
_IDX_SETS = {
    "mnist": (
        ("MNIST/raw", "mnist"),
        "https://yann.lecun.com/exdb/mnist/ (mirror: https://ossci-datasets.s3.amazonaws.com/mnist/)",
        _DIGIT_CLASSES,
    ),
    "fashion-mnist": (
        ("FashionMNIST/raw", "fashion-mnist"),
        "https://github.com/zalandoresearch/fashion-mnist",
        _FASHION_CLASSES,
    ),
}


def _find_idx(root: Path, name: str, stem: str) -> Path:
    folders, source, _ = _IDX_SETS[name]
    for folder in folders:
        for suffix in ("", ".gz"):
            p = root / folder / (stem + suffix)
            if p.is_file():
                return p
    raise _missing(
        f"file '{stem}' (or '{stem}.gz')",
        [root / f for f in folders],
        source,
        f"{folders[0]}/{stem}[.gz]",
    )


def _load_idx_set(name: str, root: Path, seed: int, val_fraction: float) -> Dataset:
    arrays = {}
    for key, stem in _MNIST_FILES.items():
        path = _find_idx(root, name, stem)
        arrays[key] = read_idx(path)
        arrays[key + "_path"] = path
    splits = []
    for part in ("train", "test"):
        xs, ys = arrays[f"{part}_x"], arrays[f"{part}_y"]
        if xs.ndim != 3 or ys.ndim != 1 or xs.shape[0] != ys.shape[0]:
            raise ValueError(
                f"'{arrays[part + '_x_path']}' {xs.shape} and '{arrays[part + '_y_path']}' "
                f"{ys.shape} do not match; expected (N, H, W) images and (N,) labels"
            )
        x = torch.from_numpy(xs.astype(np.float32) / 255.0).unsqueeze(1)
        splits.append(Split(x, torch.from_numpy(ys.astype(np.int64))))
    train, val = _carve_val(splits[0], val_fraction, seed)
    classes = list(_IDX_SETS[name][2])
    return Dataset(name, train, val, splits[1], len(classes), "static", tuple(train.x.shape[1:]), classes)


def _load_mnist(seed: int, *, root: Path, val_fraction: float = 0.1) -> Dataset:
    """MNIST from IDX files under ``root/MNIST/raw/`` (or ``root/mnist/``); val carved from train."""
    return _load_idx_set("mnist", root, seed, val_fraction)


def _load_fashion_mnist(seed: int, *, root: Path, val_fraction: float = 0.1) -> Dataset:
    """Fashion-MNIST from IDX files under ``root/FashionMNIST/raw/`` (or ``root/fashion-mnist/``)."""
    return _load_idx_set("fashion-mnist", root, seed, val_fraction)


_CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz, unpacked)"


class _CifarUnpickler(pickle.Unpickler):
    """Reads the CIFAR-10 python batches and refuses anything else.

    A plain ``pickle.load`` runs whatever code a crafted file names; this unpickler only
    lets through what the real batches hold (a dict of bytes, lists of ints and bytes, and
    numpy arrays, whose reconstruction needs the few numpy functions below).
    """

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes for protocol 2
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch holds only a dict of bytes, "
                "lists and numpy arrays"
            )
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise _missing(
            f"file '{path.name}'", [path.parent], _CIFAR_SOURCE, f"cifar-10-batches-py/{path.name}"
        )
    try:
        with open(path, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
        if not isinstance(d, dict):
            raise TypeError(f"the file holds a {type(d).__name__}, not a dict")
        data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except Exception as e:  # pickle raises many kinds of errors on a damaged file
        raise ValueError(
            f"corrupt CIFAR-10 batch '{path}': {type(e).__name__}: {e}; expected a pickled dict "
            f"with b'data' (N x 3072 uint8) and b'labels'"
        ) from e
    if data.shape[0] != labels.shape[0]:
        raise ValueError(f"corrupt CIFAR-10 batch '{path}': {data.shape[0]} images but {labels.shape[0]} labels")
    return data, labels


def _load_cifar10(seed: int, *, root: Path, val_fraction: float = 0.1) -> Dataset:
    """CIFAR-10 from the python batches in ``root/cifar-10-batches-py/``; val carved from train."""
    folder = root / "cifar-10-batches-py"
    parts = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = _read_cifar_batch(folder / "test_batch")

    def to_split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y))

    full = to_split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    train, val = _carve_val(full, val_fraction, seed)
    return Dataset(
        "cifar10", train, val, to_split(test_x, test_y), 10, "static", (3, 32, 32), list(_CIFAR_CLASSES)
    )


# --------------------------------------------------------------------------- real event data (tonic)


def events_to_frames(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    timesteps: int,
    size: int | None = None,
) -> torch.Tensor:
    """Bin an event stream into ``timesteps`` frames of ON/OFF counts.

    Args:
        events: numpy structured array with fields ``x``, ``y``, ``t``, ``p`` (tonic's format;
            ``p`` is 0/1 or bool, 1 = ON). ``t`` in any unit; the bins are ``timesteps`` equal
            slices of ``[t_first, t_last]``, the last one closed.
        sensor_size: ``(W, H, 2)`` as in tonic.
        timesteps: number of frames ``T``.
        size: optional output side; frames are sum-pooled down to ``size x size`` so counts
            are preserved (exactly when ``H`` and ``W`` are multiples of ``size``).

    Returns:
        ``(T, 2, H', W')`` float32 event counts, channel 0 = ON, 1 = OFF (same order as the
        synthetic sets); every event is counted once.

    This is tonic's ``ToFrame(n_time_bins=T)`` except that no event is lost: tonic rounds
    the bin width down to a whole time unit and so drops the tail of each recording.
    """
    _check_positive_int("timesteps", timesteps)
    w, h, _ = sensor_size
    frames = np.zeros((timesteps, 2, h, w), dtype=np.float32)
    if len(events) > 0:
        t = events["t"].astype(np.float64)
        t0, span = t.min(), t.max() - t.min()
        step = np.zeros(len(t), dtype=np.int64) if span == 0 else (t - t0) * timesteps // span
        step = np.minimum(step.astype(np.int64), timesteps - 1)  # t_last falls in the last bin
        channel = np.where(events["p"].astype(bool), 0, 1)  # ON -> 0, OFF -> 1
        np.add.at(frames, (step, channel, events["y"].astype(np.int64), events["x"].astype(np.int64)), 1.0)
    out = torch.from_numpy(frames)
    if size is not None and (size, size) != (h, w):
        # adaptive average x area ratio = sum-pooling, keeping event counts
        out = F.adaptive_avg_pool2d(out, (size, size)) * (h * w) / (size * size)
    return out.contiguous()


def _require_tonic() -> Any:
    try:
        import tonic
    except ImportError as e:
        raise ImportError(
            'real event data sets need tonic; install it with: pip install "snnkit[events]"'
        ) from e
    return tonic


def _offline(cls: type, source: str, layout: str) -> type:
    """A subclass of a tonic dataset that raises instead of downloading (same name, same folder)."""

    def refuse(self: Any) -> None:
        raise _missing(
            f"'{self.filename}' with all of its files extracted", [Path(self.location_on_system)], source, layout
        )

    return type(cls.__name__, (cls,), {"download": refuse})


def _tonic_splits(
    make: Callable[[bool], Any],
    seed: int,
    timesteps: int,
    size: int | None,
    val_fraction: float,
    limit: int | None,
) -> tuple[Split, Split, Split]:
    """Convert tonic's train and test recordings to frame tensors; carve val from train."""
    out = []
    for train in (True, False):
        ds = make(train)
        labels = np.asarray(ds.targets, dtype=np.int64)
        idx = np.arange(len(labels))
        if limit is not None:
            _check_positive_int("limit", limit)
            idx = np.sort(_stratified_order(labels, seed)[:limit])
        x = torch.stack([events_to_frames(ds[i][0], ds.sensor_size, timesteps, size) for i in idx])
        out.append(Split(x, torch.from_numpy(labels[idx])))
    train, val = _carve_val(out[0], val_fraction, seed)
    return train, val, out[1]


_DVS_SOURCE = (
    "https://research.ibm.com/interactive/dvsgesture/ (tonic's preprocessed archives: "
    "https://figshare.com/ndownloader/files/38022171 = ibmGestureTrain.tar.gz, "
    "https://figshare.com/ndownloader/files/38020584 = ibmGestureTest.tar.gz)"
)
_NMNIST_SOURCE = (
    "https://www.garrickorchard.com/datasets/n-mnist (train.zip and test.zip as published "
    "on Mendeley Data, dataset 468j46mzdv)"
)


def _load_dvs_gesture(
    seed: int,
    *,
    root: Path,
    timesteps: int = 20,
    size: int | None = 32,
    val_fraction: float = 0.1,
    limit: int | None = None,
) -> Dataset:
    """DVS128 Gesture via tonic from ``root/DVSGesture/`` (archives plus extracted folders).

    Each recording is binned into ``timesteps`` frames and sum-pooled from 128x128 to
    ``size x size`` (``None`` keeps 128). ``limit`` keeps at most that many recordings per
    source split (class-stratified, from ``seed``) because conversion is slow.
    """
    return _tonic_dataset(
        "dvs-gesture", "DVSGesture", root, "DVSGesture",
        (("ibmGestureTrain.tar.gz", "ibmGestureTrain"), ("ibmGestureTest.tar.gz", "ibmGestureTest")),
        lambda folder: any(folder.glob("**/*.npy")), _DVS_SOURCE, list(_DVS_GESTURE_CLASSES),
        seed, timesteps, size, val_fraction, limit,
    )


def _load_n_mnist(
    seed: int,
    *,
    root: Path,
    timesteps: int = 10,
    size: int | None = None,
    val_fraction: float = 0.1,
    limit: int | None = None,
) -> Dataset:
    """N-MNIST via tonic from ``root/NMNIST/`` (``train.zip`` + ``Train/``, ``test.zip`` + ``Test/``).

    Recordings are binned into ``timesteps`` frames on the 34x34 sensor (``size`` sum-pools
    them smaller). ``limit`` keeps at most that many recordings per source split.
    """
    return _tonic_dataset(
        "n-mnist", "NMNIST", root, "NMNIST", (("train.zip", "Train"), ("test.zip", "Test")),
        Path.is_dir, _NMNIST_SOURCE, list(_DIGIT_CLASSES), seed, timesteps, size, val_fraction, limit,
    )


def _tonic_dataset(
    name: str,
    tonic_class: str,
    root: Path,
    folder: str,
    files: tuple[tuple[str, str], ...],
    extracted: Callable[[Path], bool],
    source: str,
    classes: list[str],
    seed: int,
    timesteps: int,
    size: int | None,
    val_fraction: float,
    limit: int | None,
) -> Dataset:
    """Load a tonic event data set from ``root/folder`` after checking its files ourselves.

    ``files`` lists (archive, extracted folder) pairs; ``extracted(path)`` says whether an
    extracted folder holds the recordings. tonic would try to download anything missing,
    so a missing file raises the kit's own clear error first.
    """
    tonic = _require_tonic()
    base = root / folder
    for archive, sub in files:
        if not (base / archive).is_file() or not extracted(base / sub):
            raise _missing(
                f"'{archive}' and its extracted folder '{sub}/'", [base], source,
                f"{folder}/{archive} + {folder}/{sub}/",
            )
    cls = _offline(getattr(tonic.datasets, tonic_class), source, f"{folder}/<archive> + extracted folder")
    train, val, test = _tonic_splits(
        lambda tr: cls(save_to=str(root), train=tr), seed, timesteps, size, val_fraction, limit
    )
    return Dataset(name, train, val, test, len(classes), "event", tuple(train.x.shape[1:]), classes)


# --------------------------------------------------------------------------- entry point


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} is not accepted; expected an int >= 1")


def _check_nonneg(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name}={value!r} is not accepted; expected a number >= 0")


#: name -> loader ``fn(seed, **options) -> Dataset``; :func:`load_dataset` is the way to call one.
LOADERS: Registry[Callable[..., Dataset]] = Registry("dataset")
for _name, _loader in (
    ("digits", _load_digits),
    ("event-digits", _load_event_digits),
    ("event-gestures", _load_event_gestures),
    ("mnist", _load_mnist),
    ("fashion-mnist", _load_fashion_mnist),
    ("cifar10", _load_cifar10),
    ("dvs-gesture", _load_dvs_gesture),
    ("n-mnist", _load_n_mnist),
):
    LOADERS.register(_name, _loader)

#: The names :func:`load_dataset` accepts.
DATASETS: tuple[str, ...] = LOADERS.names()


def load_dataset(
    name: str, *, root: str | os.PathLike | None = None, seed: int = 0, **options: Any
) -> Dataset:
    """Load a data set by name into memory.

    Args:
        name: one of :data:`DATASETS`.
        root: folder of real data files (default ``$SNNKIT_DATA`` or ``<repo>/data``);
            ignored by the synthetic and bundled sets.
        seed: fixes the splits and all synthetic randomness.
        **options: per data set, e.g. ``size`` and ``timesteps``; see the ``_load_*``
            docstrings. An unknown option raises ``ValueError`` listing the accepted ones.

    Raises:
        ValueError: unknown name or option, or a corrupt file.
        FileNotFoundError: a real data file is missing (the message says where to put it).
    """
    loader = LOADERS.get(name)
    params = inspect.signature(loader).parameters
    accepted = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY and p != "root"]
    for key in options:
        if key not in accepted:
            raise ValueError(
                f"unknown option {key!r} for dataset {name!r}; expected one of: {', '.join(accepted) or '(none)'}"
            )
    if "root" in params:
        options["root"] = data_root(root)
    return loader(seed, **options)
