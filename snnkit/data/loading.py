"""The registry of data sets (:data:`LOADERS`) and :func:`load_dataset`, the one way to load one."""
from __future__ import annotations

import inspect
import os
from typing import Any, Callable

from ..registry import Registry
from .containers import Dataset
from .embedded import load_digits, load_mnist1d, load_mnist_5k
from .event_files import load_dvs_gesture, load_n_mnist
from .events import load_event_digits, load_event_gestures
from .files import data_root, load_cifar10, load_fashion_mnist, load_mnist
from .periodic_gestures import load_event_gestures_hard

__all__ = ["DATASETS", "EMBEDDED", "LOADERS", "load_dataset"]

#: name -> loader ``fn(seed, **options) -> Dataset``; :func:`load_dataset` is the way to call one.
#: A loader that takes a keyword ``root`` gets the data folder (:func:`data_root`).
LOADERS: Registry[Callable[..., Dataset]] = Registry("dataset")
for _name, _loader in (
    ("digits", load_digits),
    ("event-digits", load_event_digits),
    ("event-gestures", load_event_gestures),
    ("mnist", load_mnist),
    ("fashion-mnist", load_fashion_mnist),
    ("cifar10", load_cifar10),
    ("dvs-gesture", load_dvs_gesture),
    ("n-mnist", load_n_mnist),
    ("mnist-5k", load_mnist_5k),
    ("mnist1d", load_mnist1d),
    ("event-gestures-hard", load_event_gestures_hard),
):
    LOADERS.register(_name, _loader)

#: The names :func:`load_dataset` accepts.
DATASETS: tuple[str, ...] = LOADERS.names()

#: The sets that need no files: shipped inside installed packages or generated.
EMBEDDED: tuple[str, ...] = (
    "digits", "mnist-5k", "mnist1d", "event-digits", "event-gestures", "event-gestures-hard",
)


def load_dataset(
    name: str, *, root: str | os.PathLike | None = None, seed: int = 0, **options: Any
) -> Dataset:
    """Load a data set by name into memory.

    Args:
        name: one of :data:`DATASETS`.
        root: the data folder (default ``$SNNKIT_DATA`` or ``<repo>/data``): where real data
            files are read from and where the slow embedded sets are cached (``root/cache/``);
            ignored by the sets that need neither.
        seed: fixes the seeded splits and the synthetic randomness of ``digits``,
            ``event-digits`` and ``event-gestures`` and the validation carve of the real
            file sets; the newer sets (``mnist-5k``, ``mnist1d``, ``event-gestures-hard``)
            have a fixed split, the same for every seed, and do not use it.
        **options: per data set, e.g. ``size`` and ``timesteps``; see each loader's
            docstring (``LOADERS.get(name)``). An unknown option raises ``ValueError``
            listing the accepted ones.

    Raises:
        ValueError: unknown name or option, a bad option value, or a corrupt file.
        FileNotFoundError: a real data file is missing (the message says where to put it).
        ImportError: a package the set needs is missing (the message says which).
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
