"""Data sets in memory (:class:`Split`, :class:`Dataset`) and the ways they are split.

Two kinds of split:

* **seeded** (:func:`stratified_order`, :func:`stratified_split`): a class-stratified
  shuffle drawn from a seed, used by the sets whose split may vary with the run's seed
  (``digits`` and its event versions) and by :meth:`Split.subset`;
* **fixed** (:func:`fixed_stratified_order`, :func:`fixed_stratified_split`): class-
  stratified, in an order given by a hash of each sample's index rather than by a random
  generator, so the split is the same on every
  machine, every NumPy version and every run's seed. The newer sets use it, so that a test
  split stays put while the runs' seeds change.
"""
from __future__ import annotations

import hashlib
import numbers
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

__all__ = [
    "DIGIT_CLASSES",
    "SPLIT_FRACTIONS",
    "Dataset",
    "Split",
    "carve_val",
    "check_nonneg",
    "check_positive_int",
    "describe",
    "fixed_stratified_order",
    "fixed_stratified_split",
    "splits_from_arrays",
    "stratified_order",
    "stratified_split",
]

# Fractions of the seeded stratified split used by the data sets that ship without one.
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)

#: Class names of every handwritten-digit set.
DIGIT_CLASSES = [str(d) for d in range(10)]


# --------------------------------------------------------------------------- containers


@dataclass
class Split:
    """One split held in memory.

    Attributes:
        x: static ``(N, C, H, W)`` or ``(N, C, L)`` float32, or event ``(N, T, 2, H, W)``
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
        order = stratified_order(self.y.numpy(), seed)
        idx = torch.from_numpy(np.sort(order[:n]))
        return Split(self.x[idx], self.y[idx])


@dataclass
class Dataset:
    """A data set with its three splits and what a model needs to know about it.

    Attributes:
        name: the name given to :func:`load_dataset`.
        kind: ``"static"`` or ``"event"``.
        input_shape: per-sample shape: ``(C, H, W)`` for static images, ``(C, L)`` for
            static sequences, ``(T, 2, H, W)`` for event data.
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


def describe(ds: Dataset) -> str:
    """One-line summary, e.g. ``digits: static (1, 16, 16), 10 classes, train/val/test 1257/180/360``."""
    return (
        f"{ds.name}: {ds.kind} {tuple(ds.input_shape)}, {ds.num_classes} classes, "
        f"train/val/test {len(ds.train)}/{len(ds.val)}/{len(ds.test)}"
    )


# --------------------------------------------------------------------------- argument checks


def check_positive_int(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int >= 1 (bools refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} is not accepted; expected an int >= 1")


def check_nonneg(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{name}={value!r} is not accepted; expected a number >= 0")


# --------------------------------------------------------------------------- splitting


def stratified_order(y: np.ndarray, seed: int) -> np.ndarray:
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


def _cut_class(members: np.ndarray, fractions: tuple[float, ...]) -> list[np.ndarray]:
    """Cut one class's (ordered) members into parts by ``fractions``.

    Every part but the first gets ``round(fraction * n_c)`` members (at least one when the
    class is big enough to give every part one); the first part takes the rest, so no
    sample is lost to rounding.
    """
    least = 1 if len(members) >= len(fractions) else 0
    sizes = [max(least, int(round(f * len(members)))) for f in fractions[1:]]
    cuts = np.cumsum([len(members) - sum(sizes), *sizes])[:-1]
    return np.split(members, cuts)


def stratified_split(y: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split indices per class by ``fractions`` (summing to 1), each class shuffled from ``seed``.

    Returns one sorted index array per fraction; see :func:`_cut_class` for the rounding.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        for part, chunk in zip(parts, _cut_class(members, fractions)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _hash_key(salt: str, index: int) -> bytes:
    return hashlib.blake2b(f"{salt}:{index}".encode(), digest_size=8).digest()


def fixed_stratified_order(y: np.ndarray, salt: str) -> np.ndarray:
    """Like :func:`stratified_order`, but fixed by a hash of each index instead of a seed.

    Within each class, samples are ordered by the BLAKE2b hash of ``"{salt}:{index}"``, an
    order that depends on no random generator, so it is the same on every machine and every
    library version; classes are then interleaved in proportion to their size, so every
    prefix is class-balanced (within one sample per class). ``salt`` names the data set, so
    two data sets are not cut alike.
    """
    keys = np.empty(len(y), dtype=np.float64)
    hashes = [_hash_key(salt, i) for i in range(len(y))]
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        members = members[np.argsort([hashes[i] for i in members], kind="stable")]
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    tie = np.argsort(np.argsort(hashes, kind="stable"), kind="stable")  # rank of each hash
    return np.lexsort((tie, keys))


def fixed_stratified_split(y: np.ndarray, sizes: tuple[int, ...], salt: str) -> list[np.ndarray]:
    """Consecutive parts of :func:`fixed_stratified_order`: ``sizes[0]`` samples, then ``sizes[1]``, ..., then the rest.

    Returns ``len(sizes) + 1`` sorted index arrays; each part holds every class in
    proportion to its size (within one sample per class).
    """
    if any(s < 0 for s in sizes) or sum(sizes) > len(y):
        raise ValueError(f"sizes={sizes} do not fit {len(y)} samples; expected sizes >= 0 summing to at most {len(y)}")
    order = fixed_stratified_order(y, salt)
    cuts = np.cumsum(sizes)
    return [np.sort(part) for part in np.split(order, cuts)]


def splits_from_arrays(
    x: torch.Tensor, y: torch.Tensor, seed: int, fractions: tuple[float, ...] = SPLIT_FRACTIONS
) -> tuple[Split, Split, Split]:
    """Train, val and test :class:`Split` s of ``(x, y)`` by a seeded stratified split."""
    tr, va, te = stratified_split(y.numpy(), fractions, seed)
    return tuple(Split(x[torch.from_numpy(i)], y[torch.from_numpy(i)]) for i in (tr, va, te))


def carve_val(train: Split, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """Carve a seeded, stratified validation split out of a training split."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction} is out of range; expected 0 < val_fraction < 1")
    tr, va = stratified_split(train.y.numpy(), (1.0 - val_fraction, val_fraction), seed)
    tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
    return Split(train.x[tr_t], train.y[tr_t]), Split(train.x[va_t], train.y[va_t])
