"""An on-disk cache of arrays for the data sets that are slow to read or generate.

A cached set is one uncompressed ``.npz`` file (NumPy's zip of arrays, read without
pickle; uncompressed because it reads several times faster) under ``<data folder>/cache/``,
named after the set and a hash of everything that made it (the kit's cache format version,
the source's version and the set's options), so two settings never share a file. The file
stores that key too, and zip keeps a CRC-32 of every array, checked as it is read:

* a file whose key does not match, or that cannot be read (truncated, not a zip, a CRC
  that does not match), is *damaged*: it is rebuilt, with a warning naming it;
* files are written to a temporary name in the same folder and renamed into place, so a
  crash or two processes building at once never leave a half-written file behind;
* a folder that cannot be written to is not an error: the set is rebuilt on every load,
  with a warning saying so.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["CACHE_VERSION", "cache_path", "cached_arrays", "CacheWarning"]

#: Bumped whenever what a cached file holds changes meaning; old files are then ignored.
CACHE_VERSION = 1

_KEY = "__key__"


class CacheWarning(UserWarning):
    """A cache file was damaged and rebuilt, or could not be written."""


def _key_text(key: Mapping[str, Any]) -> str:
    return json.dumps({"cache_version": CACHE_VERSION, **key}, sort_keys=True, default=str)


def cache_path(root: Path, name: str, key: Mapping[str, Any]) -> Path:
    """``root/cache/<name>-<12 hex digits>.npz``, the digits a hash of ``key`` (any JSON-able options)."""
    digest = hashlib.blake2b(_key_text(key).encode(), digest_size=6).hexdigest()
    return Path(root) / "cache" / f"{name}-{digest}.npz"


def _read(path: Path, key_text: str) -> dict[str, np.ndarray]:
    """The arrays of a cache file; ``ValueError`` saying why when it is damaged or stale."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as e:  # zipfile, zlib and numpy raise many kinds on a damaged file
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from e
    stored_key = arrays.pop(_KEY, None)
    if stored_key is None:
        raise ValueError("no key stored")
    if str(stored_key) != key_text:
        raise ValueError("written for other options")
    return arrays


def _write_atomic(path: Path, arrays: Mapping[str, np.ndarray], key_text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, **{_KEY: np.array(key_text)})
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a shared data folder needs it readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_arrays(
    root: Path, name: str, key: Mapping[str, Any], build: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The arrays ``build()`` returns, read from the cache when a sound copy is there.

    Args:
        root: the data folder (see :func:`snnkit.data.data_root`); the file goes in ``root/cache/``.
        name: the data set's name, the start of the file name.
        key: everything the arrays depend on (source version, options), JSON-able.
        build: makes the arrays when there is no sound cached copy; names must not start
            with ``__``.

    Returns:
        name -> array, exactly as ``build()`` made them (dtype and shape kept).
    """
    path = cache_path(root, name, key)
    text = _key_text(key)
    if path.is_file():
        try:
            return _read(path, text)
        except ValueError as e:
            warnings.warn(f"cache file '{path}' is damaged ({e}); rebuilding it", CacheWarning, stacklevel=3)
    arrays = build()
    bad = [k for k in arrays if k.startswith("__")]
    if bad:
        raise ValueError(f"array names {bad} are reserved for the cache; use names without a leading '__'")
    try:
        _write_atomic(path, arrays, text)
    except OSError as e:
        warnings.warn(
            f"cannot write the cache file '{path}' ({e}); '{name}' will be rebuilt on every load "
            "(set $SNNKIT_DATA or root= to a writable folder to keep it)", CacheWarning, stacklevel=3,
        )
    return arrays
