"""Give freed heap memory back to the operating system (glibc only; a no-op elsewhere).

Why: a snapshot keeps a few small arrays alive for a long time, and they land between the large
temporary buffers of the probe's forward pass. glibc's allocator then cannot shrink its heap,
and the process grows although nothing leaks: measured on a 2-run comparison with a snapshot
every step, RSS went from 344 MB to 468 MB after 400 snapshots, and a 6-run comparison with full
histories reached 1.4 GB. `malloc_trim(0)` hands the free pages back (RSS stayed at 344 MB); it
costs about a millisecond, so it runs at most once per `min_interval` seconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time

_MIN_INTERVAL_SECONDS = 1.0
_lock = threading.Lock()
_last_trim = 0.0


def _load_malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # absent on musl
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def release_freed_memory(min_interval: float = _MIN_INTERVAL_SECONDS) -> bool:
    """Trim the heap unless that was done less than `min_interval` seconds ago.

    Returns whether a trim ran."""
    global _last_trim
    if _malloc_trim is None:
        return False
    now = time.monotonic()
    with _lock:
        if now - _last_trim < min_interval:
            return False
        _last_trim = now
    _malloc_trim(0)
    return True
