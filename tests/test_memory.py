"""release_free_memory gives a finished phase's freed, fragmented heap memory back to the system."""

import sys

import pytest
import torch

from gan.runtime.memory import _malloc_trim, release_free_memory


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_freed_blocks_between_live_ones_leave_the_resident_set():
    # 2000 blocks of 100 KB (below glibc's mmap threshold, so on the heap), every 20th kept alive:
    # the freed ones are holes the heap cannot shrink past, resident until trimmed
    blocks = [torch.ones(25_000) for _ in range(2000)]
    kept = blocks[::20]
    del blocks
    before = resident_mb()
    assert release_free_memory()
    assert before - resident_mb() > 100
    assert all(float(b[0]) == 1.0 for b in kept)  # the live blocks are untouched
