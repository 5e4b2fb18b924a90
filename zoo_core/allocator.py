"""Start-up allocator tuning: keep freed activations inside the process instead of handing them back to the kernel.

A separation allocates and frees the same large activations (tens of MB each) for every segment. With glibc's
defaults each of them is an ``mmap`` that is unmapped on ``free``, so the next segment page-faults the same
memory back in, zero-filled: a large share of the CPU time of the 2-D convolution models (docs/performance.md). Raising the trim and
mmap thresholds keeps that memory in the heap for reuse. glibc refuses an mmap threshold above 32 MiB on
64-bit systems, and the dense blocks of the largest built-in models hold ~125 MB tensors, so `tune_allocator` instead
switches ``mmap`` off for the heap (``M_MMAP_MAX = 0``): every block comes from the heap, freed blocks stay
there, and the heap top is never trimmed. Peak memory is unchanged (the same blocks are live at the peak);
only the return of freed memory to the system is deferred until the process ends.

The ``zoo`` command calls `tune_allocator` at start-up. Python users call it once, first thing::

    import zoo_core.allocator
    zoo_core.allocator.tune_allocator()

It is a no-op (returning False) where the C library is not glibc, e.g. on macOS or Windows, or when a
different allocator (jemalloc, tcmalloc through ``LD_PRELOAD``) already replaced ``malloc``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt takes: in practice, never trim the heap's free top
TOP_PAD = 256 * 2**20  # grow the heap in large steps: fewer brk calls while the first segment runs
DISABLE_ENV = "ZOO_NO_ALLOCATOR_TUNING"

_tuned = False


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    if any(name in os.environ.get("LD_PRELOAD", "") for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return None  # another allocator owns malloc; its own settings apply
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def tune_allocator() -> bool:
    """Keep freed memory in the process for reuse (glibc only); True when the settings were applied.

    Idempotent. Set the environment variable ``ZOO_NO_ALLOCATOR_TUNING=1`` to leave malloc at its defaults.
    """
    global _tuned
    if _tuned:
        return True
    if os.environ.get(DISABLE_ENV):
        return False
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    results = [
        libc.mallopt(M_MMAP_MAX, 0),
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        libc.mallopt(M_TOP_PAD, TOP_PAD),
    ]
    _tuned = all(result == 1 for result in results)
    return _tuned
