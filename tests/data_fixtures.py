"""Small files in the real data sets' own formats, written by the tests (nothing committed).

Each writer puts one data set under a data root in the layout its reader expects (see
``data/README.md`` and :mod:`snnkit.datafiles`) and returns what it wrote, so a test can
compare what the kit reads with what is on disk:

* :func:`write_idx` -- MNIST / Fashion-MNIST: gzipped IDX files in ``MNIST/raw/``
  (``FashionMNIST/raw/``), the official names, magic numbers and big-endian sizes;
* :func:`write_cifar10` -- ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` and
  ``batches.meta``: protocol-2 pickles of dicts with bytes keys, as the official files load
  with ``encoding="bytes"``;
* :func:`write_dvs_gesture` -- tonic's DVS128 Gesture: ``DVSGesture/ibmGestureTrain.tar.gz``
  and its extracted ``ibmGestureTrain/userNN_<lighting>/<label>.npy`` (int columns x, y,
  p, t in ms), the same for the test split;
* :func:`write_n_mnist` -- N-MNIST: ``NMNIST/train.zip`` and ``Train/<digit>/NNNNN.bin``
  (5 bytes per event: x, y, polarity bit and a 23-bit time in us), the same for the test
  split, with the 10,000 recordings per split below which tonic would try to download.

Images and events are random but seeded: the files exercise the data path, not learning.
"""
from __future__ import annotations

import gzip
import pickle
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file of a uint8 array: 0x0000, type 0x08, ndim, big-endian int32 sizes, data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def write_idx(root: Path, name: str = "mnist", *, n_train: int = 100, n_test: int = 40, size: int = 28,
              seed: int = 0) -> dict[str, np.ndarray]:
    """Write MNIST-format IDX files (gzipped) for ``name`` ("mnist" or "fashion-mnist").

    Returns:
        file stem -> the array written (images (N, size, size) uint8, labels (N,) uint8).
    """
    folder = Path(root) / {"mnist": "MNIST/raw", "fashion-mnist": "FashionMNIST/raw"}[name]
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, arr in arrays.items():
        with gzip.open(folder / f"{stem}.gz", "wb") as f:
            f.write(idx_bytes(arr))
    return arrays


def write_cifar10(root: Path, name: str = "cifar10", *, per_batch: int = 20, seed: int = 0
                  ) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Write the CIFAR-10 python batches: five training batches, the test batch and the meta file.

    Returns:
        batch name -> (data (N, 3072) uint8, labels).
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {}
    for i, batch in enumerate(names):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(per_batch)]
        label = f"training batch {i + 1} of 5" if i < 5 else "testing batch 1 of 1"
        record = {b"batch_label": label.encode(), b"labels": labels, b"data": data,
                  b"filenames": [f"image_{i}_{j}.png".encode() for j in range(per_batch)]}
        with open(folder / batch, "wb") as f:
            pickle.dump(record, f, protocol=2)
        batches[batch] = (data, labels)
    meta = {b"label_names": [c.encode() for c in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                                   "frog", "horse", "ship", "truck")],
            b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return batches


def _archive(folder: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


def write_dvs_gesture(root: Path, name: str = "dvs-gesture", *, users: int = 10, events: int = 2000,
                      seed: int = 0) -> dict[str, int]:
    """Write DVS128 Gesture recordings in tonic's layout: ``users`` user folders per split, each
    with the 11 gestures (``users >= 10`` gives the 100 files per split tonic checks for).

    Each recording is a blob of events (spread 6 pixels) that moves from the middle of the
    128x128 sensor in a direction set by its label over 6 s, so that, as in the real
    recordings, the events are dense where the hand is.

    Returns:
        split folder -> number of recordings written.
    """
    rng = np.random.default_rng(seed)
    base = Path(root) / "DVSGesture"
    base.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, first_user in (("ibmGestureTrain", 1), ("ibmGestureTest", 24)):
        for u in range(users):
            folder = base / split / f"user{first_user + u:02d}_{('fluorescent', 'led', 'natural')[u % 3]}"
            folder.mkdir(parents=True, exist_ok=True)
            for label in range(11):
                t = np.sort(rng.integers(0, 6000, events))  # ms, as tonic's preprocessed files
                angle = 2 * np.pi * label / 11
                path = 40 * t / 6000  # pixels travelled
                x = np.clip(64 + path * np.cos(angle) + rng.normal(0, 6, events), 0, 127)
                y = np.clip(64 + path * np.sin(angle) + rng.normal(0, 6, events), 0, 127)
                ev = np.stack([x.astype(np.int64), y.astype(np.int64), rng.integers(0, 2, events), t], axis=1)
                np.save(folder / f"{label}.npy", ev)  # columns x, y, p, t
        _archive(base / split, base / f"{split}.tar.gz")
        written[split] = users * 11
    return written


def nmnist_bytes(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray) -> bytes:
    """N-MNIST's binary events: per event x, y, then polarity in bit 7 and a 23-bit time in us."""
    out = np.empty((len(x), 5), dtype=np.uint8)
    out[:, 0], out[:, 1] = x, y
    out[:, 2] = (p.astype(np.uint32) << 7) | ((t >> 16) & 0x7F)
    out[:, 3], out[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return out.tobytes()


def write_n_mnist(root: Path, name: str = "n-mnist", *, per_split: int = 10_000, events: int = 20,
                  seed: int = 0) -> dict[str, int]:
    """Write N-MNIST recordings in tonic's layout, ``per_split`` per split (tonic checks for 10,000).

    Returns:
        split folder -> number of recordings written.
    """
    rng = np.random.default_rng(seed)
    base = Path(root) / "NMNIST"
    base.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, archive in (("Train", "train.zip"), ("Test", "test.zip")):
        for digit in range(10):
            (base / split / str(digit)).mkdir(parents=True, exist_ok=True)
        shape = (per_split, events)
        t = np.sort(rng.integers(0, 300_000, shape), axis=1).astype(np.uint32)
        xs, ys, ps = (rng.integers(0, hi, shape).astype(np.uint32) for hi in (34, 34, 2))
        with zipfile.ZipFile(base / archive, "w", zipfile.ZIP_STORED) as zf:
            for i in range(per_split):
                data = nmnist_bytes(xs[i], ys[i], ps[i], t[i])
                rel = f"{split}/{i % 10}/{i:05d}.bin"
                (base / rel).write_bytes(data)
                zf.writestr(rel, data)
        written[split] = per_split
    return written


FIXTURE_WRITERS: dict[str, Callable[..., Any]] = {
    "mnist": write_idx, "fashion-mnist": write_idx, "cifar10": write_cifar10,
    "dvs-gesture": write_dvs_gesture, "n-mnist": write_n_mnist,
}
"""Data set name -> its writer, for every name :data:`snnkit.datafiles.FILE_SETS` knows."""


def write_fixture(name: str, root: Path, **options: Any) -> Any:
    """Write data set ``name``'s fixture under ``root`` (see the module docstring)."""
    return FIXTURE_WRITERS[name](Path(root), name, **options)
