"""Which files each real data set needs, checked before anything is loaded or trained.

:func:`require` looks for a data set's files under the data folder (``root``, else
``$SNNKIT_DATA``, else the repository's ``data/``) without reading them, and when any is
missing raises one error that names the data set, the folder it looked in, every missing
file, the layout it expects and where to get the files. The notebooks' ``make_config``
calls it, so a run stops at its config cell rather than after minutes of work.

The layouts are those of ``data/README.md`` and of the readers in :mod:`snnkit.data`;
for the event sets read through tonic they include tonic's own test of an extracted
archive (at least 100 ``.npy`` files for DVS128 Gesture, 10,000 ``.bin`` files for N-MNIST
per split), below which tonic would try to download.
"""
from __future__ import annotations

import importlib.util
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from .data import data_root

__all__ = ["FILE_SETS", "FileSet", "files_needed", "require"]


@dataclass(frozen=True)
class FileSet:
    """The files one real data set needs.

    Attributes:
        folders: folders under the data root that may hold the files, the first preferred
            (MNIST also reads ``mnist/``).
        files: file names that must all be in one of ``folders``; with ``gz`` each may also
            be ``NAME.gz``.
        gz: whether a gzipped copy counts.
        extracted: for archives tonic reads: (archive, extracted folder, least number of
            files of ``pattern`` in it) per split, all under ``folders[0]``.
        pattern: the recordings' glob inside an extracted folder (``*.npy``, ``*.bin``).
        package: a Python package the reader needs (``tonic``), or None.
        source: where to get the files.
        layout: the expected tree under the data root, one line per entry.
    """

    folders: tuple[str, ...]
    files: tuple[str, ...]
    source: str
    layout: str
    gz: bool = False
    extracted: tuple[tuple[str, str, int], ...] = ()
    pattern: str = ""
    package: str | None = None


_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)

#: data set name (as in :data:`snnkit.data.LOADERS`) -> the files it needs.
FILE_SETS: dict[str, FileSet] = {
    "mnist": FileSet(
        folders=("MNIST/raw", "mnist"), files=_IDX, gz=True,
        source="https://yann.lecun.com/exdb/mnist/ (mirror: https://ossci-datasets.s3.amazonaws.com/mnist/)",
        layout="MNIST/raw/ (or mnist/) holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
               "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each plain or .gz)",
    ),
    "fashion-mnist": FileSet(
        folders=("FashionMNIST/raw", "fashion-mnist"), files=_IDX, gz=True,
        source="https://github.com/zalandoresearch/fashion-mnist",
        layout="FashionMNIST/raw/ (or fashion-mnist/) holding train-images-idx3-ubyte, "
               "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each plain or .gz)",
    ),
    "cifar10": FileSet(
        folders=("cifar-10-batches-py",), files=_CIFAR,
        source="https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz, unpacked)",
        layout="cifar-10-batches-py/ holding data_batch_1 ... data_batch_5 and test_batch",
    ),
    "dvs-gesture": FileSet(
        folders=("DVSGesture",), files=("ibmGestureTrain.tar.gz", "ibmGestureTest.tar.gz"),
        extracted=(("ibmGestureTrain.tar.gz", "ibmGestureTrain", 100), ("ibmGestureTest.tar.gz", "ibmGestureTest", 100)),
        pattern="*.npy", package="tonic",
        source="https://research.ibm.com/interactive/dvsgesture/ (tonic's preprocessed archives: "
               "https://figshare.com/ndownloader/files/38022171 = ibmGestureTrain.tar.gz, "
               "https://figshare.com/ndownloader/files/38020584 = ibmGestureTest.tar.gz)",
        layout="DVSGesture/ holding ibmGestureTrain.tar.gz and its extracted folder ibmGestureTrain/ "
               "(userNN_<lighting>/<label>.npy), ibmGestureTest.tar.gz and ibmGestureTest/",
    ),
    "n-mnist": FileSet(
        folders=("NMNIST",), files=("train.zip", "test.zip"),
        extracted=(("train.zip", "Train", 10_000), ("test.zip", "Test", 10_000)),
        pattern="*.bin", package="tonic",
        source="https://www.garrickorchard.com/datasets/n-mnist (train.zip and test.zip as published "
               "on Mendeley Data, dataset 468j46mzdv)",
        layout="NMNIST/ holding train.zip and its extracted folder Train/ (0/ ... 9/ with .bin files), "
               "test.zip and Test/",
    ),
}


def files_needed(name: str) -> bool:
    """Whether data set ``name`` is read from files (True) or ships with the kit (False)."""
    return name in FILE_SETS


def _present(folder: Path, name: str, gz: bool) -> bool:
    return (folder / name).is_file() or (gz and (folder / f"{name}.gz").is_file())


def _count(folder: Path, pattern: str, least: int) -> int:
    """Files matching ``pattern`` anywhere under ``folder``, counted up to ``least``."""
    if not folder.is_dir():
        return 0
    return sum(1 for _ in itertools.islice(folder.glob(f"**/{pattern}"), least))


def _missing(base: Path, spec: FileSet) -> list[str]:
    """What the reader would not find under ``base``: each file in any of ``spec.folders``
    (as the IDX reader searches), each extracted folder under the first."""
    missing = []
    for name in spec.files:
        if not any(_present(base / sub, name, spec.gz) for sub in spec.folders):
            missing.append(f"{name}{' (or .gz)' if spec.gz else ''}")
    for _, sub, least in spec.extracted:
        folder = base / spec.folders[0] / sub
        found = _count(folder, spec.pattern, least)
        if found < least:
            state = "no such folder" if not folder.is_dir() else f"{found} found"
            missing.append(f"{sub}/ with at least {least} {spec.pattern} files ({state})")
    return missing


def require(name: str, root: str | os.PathLike[str] | None = None) -> Path | None:
    """Check that data set ``name``'s files are in place, without reading them.

    Args:
        name: a data set name; those that ship with the kit (``digits``, the generated
            event sets) need nothing and return None.
        root: the data folder (default: ``$SNNKIT_DATA``, else the repository's ``data/``).

    Returns:
        The data folder the files were found under, or None for a data set that needs no
        files.

    Raises:
        FileNotFoundError: a file is missing; the message names the data set, the folder(s)
            looked in, each missing file, the layout expected and where to get the files.
        ImportError: the reader needs a package that is not installed (tonic for the event
            sets), with the command that installs it.
    """
    spec = FILE_SETS.get(name)
    if spec is None:
        return None
    base = data_root(root)
    if spec.package is not None and importlib.util.find_spec(spec.package) is None:
        raise ImportError(f"dataset {name!r} is read with {spec.package}, which is not installed; "
                          f'install it with: pip install "snnkit[events]"')
    missing = _missing(base, spec)
    if not missing:
        return base
    looked = " and ".join(str(base / sub) for sub in spec.folders)
    raise FileNotFoundError(
        f"dataset {name!r}: files not found in {looked}: missing {'; '.join(missing)}. "
        f"Expected under the data folder {base}: {spec.layout}. Get them from {spec.source}. "
        "The data folder is $SNNKIT_DATA if set, else the repository's data/ (see data/README.md); "
        "snnkit never downloads at run time.")
