"""Freed memory given back to the system after a large, short-lived peak.

glibc keeps what a process frees in its heap for reuse, and after a large block is freed it raises
its mmap threshold, so the next large buffers come from the heap too and stay there. Decoding the
id lists of a large university (megabytes of JSON) would then raise the person flow's resident
size for the rest of its run. `malloc_trim` returns the free pages; elsewhere (macOS, musl) this
does nothing.
"""

from __future__ import annotations

import ctypes

__all__ = ["release_freed_memory"]

#: glibc's, from the symbols the process already has (None where the C library has none).
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)


def release_freed_memory() -> None:
    """Return the C heap's free pages to the system (glibc); a no-op elsewhere."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
