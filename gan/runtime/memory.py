"""Give the memory freed by a finished phase of a run back to the operating system.

glibc's allocator keeps freed blocks in its heaps for reuse and raises its mmap threshold after
a large block is freed, so the blocks of one phase (the rate probe, the classifier's first-use
training, the reference statistics, an evaluation) stay resident, fragmented, while the next
phase allocates anew. Releasing it between phases is cheap and lowers what a later phase starts
from; it does not bound a phase's own peak, and how much a run keeps varies from run to run with
the order of its allocations (README, "Memory"). Fixing the mmap threshold low instead cost a third
of the training speed here (every batch-sized tensor became an mmap and its page faults).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, Windows, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory(collect_cycles: bool = False) -> bool:
    """Return the allocator's free pages to the system, after collecting Python's reference cycles
    if ``collect_cycles`` (a finished Lightning trainer holds some). Costs milliseconds; call it
    between phases, not per step. Returns whether the C library could release anything."""
    if collect_cycles:
        gc.collect()
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))
