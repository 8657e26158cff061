"""Reading MNIST-format IDX files (plain or gzip), with checks that name the file at fault."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


class DataFileError(RuntimeError):
    """A dataset file is missing, truncated or not what its name says."""


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # zlib.error: a gzip file whose stream is corrupt
        raise DataFileError(f"cannot read {path}: {err}. Replace the file with a good copy.") from None


def read_idx(path: str | Path, expect_magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes and check its magic number and its size.

    Returns an ``(n, 28, 28)`` array for images (magic 2051) or an ``(n,)`` array for labels (2049).
    """
    path = Path(path)
    raw = _read_bytes(path)
    kind = "images" if expect_magic == IMAGES_MAGIC else "labels"
    if len(raw) < 8:
        raise DataFileError(f"{path} is too short ({len(raw)} bytes) to be an IDX {kind} file. Replace it.")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expect_magic:
        raise DataFileError(
            f"{path} has magic number {magic}, but an IDX {kind} file starts with {expect_magic}: "
            "it is not an MNIST-format file or is mislabelled. Replace it with the right file."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path} is truncated inside its header. Replace it.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataFileError(
            f"{path} holds {len(raw)} bytes but its header {shape} needs {expected}: "
            "the file is truncated or corrupt. Replace it with a complete copy."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
