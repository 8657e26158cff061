"""Writing files so that a crash never leaves a half-written one in place."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def file_in_the_way(folder: str | Path) -> Path | None:
    """The file that keeps ``folder`` from being a folder: ``folder`` itself or its nearest
    existing parent, when that is not a folder; None when ``folder`` is or can be made one."""
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path``, unique to this call (two writers never share one), that keeps
    the suffix so writers that dispatch on it still work."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    The rename is atomic on POSIX file systems: readers see the old file or the new one, never
    a partial one. The temporary file keeps the suffix so writers that dispatch on it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
