"""Readers of real data files on local disk: MNIST and Fashion-MNIST (IDX), CIFAR-10.

Files live under the data folder (:func:`data_root`); ``data/README.md`` lists the layouts
and where to get each file. Nothing is downloaded: a missing file raises
``FileNotFoundError`` naming the file, the folders searched and the source.
"""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .containers import DIGIT_CLASSES, Dataset, Split, carve_val

__all__ = ["data_root", "load_cifar10", "load_fashion_mnist", "load_mnist", "missing_file", "read_idx"]

_FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
_CIFAR_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Folder holding real data sets: ``root`` if given, else ``$SNNKIT_DATA``, else ``<repo>/data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("SNNKIT_DATA", Path(__file__).resolve().parents[2] / "data"))


def missing_file(what: str, where: list[Path], source: str, layout: str) -> FileNotFoundError:
    """The kit's error for a missing data file: what, where it looked, where to get it, the layout."""
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
        DIGIT_CLASSES,
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
    raise missing_file(
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
    train, val = carve_val(splits[0], val_fraction, seed)
    classes = list(_IDX_SETS[name][2])
    return Dataset(name, train, val, splits[1], len(classes), "static", tuple(train.x.shape[1:]), classes)


def load_mnist(seed: int, *, root: Path, val_fraction: float = 0.1) -> Dataset:
    """MNIST from IDX files under ``root/MNIST/raw/`` (or ``root/mnist/``); val carved from train."""
    return _load_idx_set("mnist", root, seed, val_fraction)


def load_fashion_mnist(seed: int, *, root: Path, val_fraction: float = 0.1) -> Dataset:
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
        raise missing_file(
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


def load_cifar10(seed: int, *, root: Path, val_fraction: float = 0.1) -> Dataset:
    """CIFAR-10 from the python batches in ``root/cifar-10-batches-py/``; val carved from train."""
    folder = root / "cifar-10-batches-py"
    parts = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = _read_cifar_batch(folder / "test_batch")

    def to_split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y))

    full = to_split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    train, val = carve_val(full, val_fraction, seed)
    return Dataset(
        "cifar10", train, val, to_split(test_x, test_y), 10, "static", (3, 32, 32), list(_CIFAR_CLASSES)
    )
