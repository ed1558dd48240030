"""Real event data from local files through tonic: DVS128 Gesture and N-MNIST.

tonic is an optional extra (``pip install "snnkit[events]"``). The kit checks the files
itself and stops tonic from downloading anything; each recording is binned into frames of
ON/OFF counts by :func:`events_to_frames`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .containers import DIGIT_CLASSES, Dataset, Split, carve_val, check_positive_int, stratified_order
from .files import missing_file

__all__ = ["events_to_frames", "load_dvs_gesture", "load_n_mnist"]

_DVS_GESTURE_CLASSES = [
    "hand clapping", "right hand wave", "left hand wave", "right arm cw", "right arm ccw",
    "left arm cw", "left arm ccw", "arm roll", "air drums", "air guitar", "other gestures",
]


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
    check_positive_int("timesteps", timesteps)
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
        raise missing_file(
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
            check_positive_int("limit", limit)
            idx = np.sort(stratified_order(labels, seed)[:limit])
        x = torch.stack([events_to_frames(ds[i][0], ds.sensor_size, timesteps, size) for i in idx])
        out.append(Split(x, torch.from_numpy(labels[idx])))
    train, val = carve_val(out[0], val_fraction, seed)
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


def load_dvs_gesture(
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


def load_n_mnist(
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
        Path.is_dir, _NMNIST_SOURCE, list(DIGIT_CLASSES), seed, timesteps, size, val_fraction, limit,
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
            raise missing_file(
                f"'{archive}' and its extracted folder '{sub}/'", [base], source,
                f"{folder}/{archive} + {folder}/{sub}/",
            )
    cls = _offline(getattr(tonic.datasets, tonic_class), source, f"{folder}/<archive> + extracted folder")
    train, val, test = _tonic_splits(
        lambda tr: cls(save_to=str(root), train=tr), seed, timesteps, size, val_fraction, limit
    )
    return Dataset(name, train, val, test, len(classes), "event", tuple(train.x.shape[1:]), classes)
