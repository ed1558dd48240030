"""glibc allocator tuning, applied once when snnkit is imported.

Training an SNN frees and re-allocates large (T, B, ...) buffers at every step. Under
glibc's default thresholds each of those is a fresh mmap/munmap, and on small VMs that
can cost about half of the run time in the kernel. Raising the mmap and trim thresholds
keeps freed memory in the process for reuse. The effect is on speed only, never on
results.

Opt out with the environment variable ``SNNKIT_TUNE_MALLOC=0`` (read at import time).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30

applied = False


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds; returns True if it was applied."""
    global applied
    if applied:
        return True
    if os.environ.get("SNNKIT_TUNE_MALLOC", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD) == 1 and ok
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    applied = ok
    return ok
