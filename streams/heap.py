"""Giving memory the worker no longer uses back to the system.

Batches, fetched records and changelog writes are short-lived, and large
ones go through the C allocator, which keeps freed memory for reuse instead
of returning it. A worker that caught up with a backlog would keep the RSS
of its busiest moment for good; trimming now and then returns it, so the
RSS follows the state the worker holds. Only glibc has ``malloc_trim``;
elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Return freed heap memory to the system; whether the C library could."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
