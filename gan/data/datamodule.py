"""The MNIST data module: decode once into a uint8 tensor, serve shuffled batches by slicing.

Files are looked for in ``<root>/<Dataset>/raw`` (torchvision's layout) and then in ``<root>``
itself, uncompressed or as ``.gz``. When they are missing, torchvision's download fills
``<root>/<Dataset>/raw`` on a machine with internet; when that fails too, one error says which
folder was searched, which files are expected and how to point the template at a copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from gan.runtime.config import ConfigError, fmt, is_int, one_of, positive_int
from gan.data.idx import IMAGES_MAGIC, LABELS_MAGIC, DataFileError, read_idx
from gan.data.images import output_range

log = logging.getLogger(__name__)

ROOT_ENV = "GAN_DATA_ROOT"
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DATASETS = ("MNIST", "FashionMNIST")


class DataNotFoundError(DataFileError):
    """The dataset files are not on disk and could not be downloaded."""


def _find_file(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _candidate_folders(root: Path, dataset: str) -> list[Path]:
    return [root / dataset / "raw", root]


DOWNLOAD_TIMEOUT_S = 30


def _download(root: Path, dataset: str) -> None:
    import socket

    import torchvision.datasets as tvd

    cls = getattr(tvd, dataset)
    log.info("%s files not found under %s: trying torchvision's download", dataset, root)
    # a network that drops packets would otherwise leave urllib waiting with no timeout
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    finally:
        socket.setdefaulttimeout(previous)


def locate_split(root: str | Path, split: str, dataset: str = "MNIST", download: bool = True) -> tuple[Path, Path]:
    """Paths of the (images, labels) IDX files of ``split``, downloading them if allowed and missing."""
    one_of("data.dataset", dataset, DATASETS)
    root = Path(root).expanduser()
    names = SPLIT_FILES[split]
    folders = _candidate_folders(root, dataset)
    found = [_find_file(folders, n) for n in names]
    if None in found and download:
        made = [p for p in (folders[0], *folders[0].parents) if not p.exists()]  # deepest first
        try:
            _download(root, dataset)
        except Exception as err:  # any network or filesystem failure ends in the one message below
            log.debug("download failed: %r", err)
        found = [_find_file(folders, n) for n in names]
        if None in found:  # the failed download leaves no empty folders in the data root
            for folder in made:
                with contextlib.suppress(OSError):
                    folder.rmdir()
    if None in found:
        missing = [n for n, f in zip(names, found) if f is None]
        raise DataNotFoundError(
            f"{dataset} {split} files not found in {folders[0]} (nor in {root}); missing: "
            f"{', '.join(missing)} (plain or .gz), and "
            + ("the download failed. " if download else "download is off. ")
            + f"Put the IDX files in {folders[0]}, or set {ROOT_ENV} (or data.root=...) to a folder "
            f"holding {dataset}/raw."
        )
    return found[0], found[1]


def load_split(root: str | Path, split: str, dataset: str = "MNIST", download: bool = True) -> tuple[Tensor, Tensor]:
    """Decode a split into ``(images uint8 (n, 28, 28), labels int64 (n,))``."""
    images_path, labels_path = locate_split(root, split, dataset, download)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataFileError(f"{images_path} holds images of size {images.shape[1:]}, not 28x28.")
    if len(images) != len(labels):
        raise DataFileError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels: "
            "the two files are from different sets. Replace them with a matching pair."
        )
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


class ImageBatches(Dataset):
    """uint8 images held once; indexing with a tensor of indices returns a scaled float batch."""

    def __init__(self, images: Tensor, labels: Tensor, value_range: tuple[float, float]) -> None:
        self.images = images
        self.labels = labels
        low, high = value_range
        self.scale = (high - low) / 255.0
        self.offset = low

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: Tensor) -> tuple[Tensor, Tensor]:
        x = self.images[index].unsqueeze(1).to(torch.float32).mul_(self.scale).add_(self.offset)
        return x, self.labels[index]


class EpochBatchSampler(Sampler[Tensor]):
    """Yields index tensors of full batches from a permutation fixed by (seed, epoch).

    Each rank of a distributed run takes its own interleaved share of the permutation. After a
    resume, ``skip`` batches of the current epoch are not served again.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (self.n // self.world_size) // self.batch_size

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        order = order[self.rank :: self.world_size][: self.n // self.world_size]
        start, self.skip = self.skip, 0
        for i in range(start, len(self)):
            yield order[i * self.batch_size : (i + 1) * self.batch_size]


class MNISTDataModule(pl.LightningDataModule):
    """MNIST (or Fashion-MNIST) as shuffled full batches scaled to the generator's output range.

    Args:
        root: folder holding ``<dataset>/raw`` (or the IDX files themselves).
        batch_size: images per batch (per process under DDP).
        scale_to: the generator's output activation, ``tanh`` ([-1, 1]) or ``sigmoid`` ([0, 1]).
        digits: optional list of labels to keep, e.g. ``[7]``.
        dataset: ``MNIST`` or ``FashionMNIST``.
        download: try torchvision's download when the files are missing.
        seed: seeds the per-epoch shuffle and the choice of ``subset``.
        subset: keep a class-balanced subset of this many training images (the same number of
            each kept class, drawn with ``seed``), e.g. 1000 for 100 per digit; null keeps them all.
    """

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 128,
        scale_to: str = "tanh",
        digits: list[int] | None = None,
        dataset: str = "MNIST",
        download: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        pin_memory: bool = False,
        subset: int | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root or os.environ.get(ROOT_ENV) or "data")
        self.batch_size = positive_int("data.batch_size", batch_size)
        self.value_range = output_range(scale_to)
        self.digits = _check_digits(digits)
        self.dataset = one_of("data.dataset", dataset, DATASETS)
        self.download = download
        self.shuffle = shuffle
        self.seed = int(seed)
        self.pin_memory = pin_memory
        self.subset = positive_int("data.subset", subset, nullable=True)
        self.train_set: ImageBatches | None = None
        self.sampler: EpochBatchSampler | None = None

    def prepare_data(self) -> None:
        # the test split too: the evaluation measures against it
        for split in SPLIT_FILES:
            locate_split(self.root, split, self.dataset, self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            images, labels = load_split(self.root, "train", self.dataset, download=False)
            if self.digits is not None:
                keep = torch.isin(labels, torch.tensor(self.digits))
                images, labels = images[keep], labels[keep]
            if self.subset is not None:
                keep = balanced_subset(labels, self.subset, self.seed)
                images, labels = images[keep], labels[keep]
            self.train_set = ImageBatches(images, labels, self.value_range)
            if len(self.train_set) < self.batch_size:
                raise ConfigError(
                    f"data.batch_size={self.batch_size} is larger than the {len(self.train_set)} training "
                    "images selected: lower data.batch_size."
                )
            log.info(
                "%s: %d training images%s%s, batch %d",
                self.dataset, len(self.train_set),
                f" of digits {self.digits}" if self.digits is not None else "",
                " (a class-balanced subset)" if self.subset is not None else "", self.batch_size,
            )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup() first"
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
        if self.sampler is None:
            self.sampler = EpochBatchSampler(len(self.train_set), self.batch_size, self.seed, self.shuffle, rank, world)
        # A generator of its own: otherwise each new epoch's iterator draws a seed from the global
        # RNG, and a resumed run (whose RNG is restored after the first iterator exists) drifts.
        return DataLoader(
            self.train_set, sampler=self.sampler, batch_size=None, pin_memory=self.pin_memory,
            generator=torch.Generator().manual_seed(self.seed),
        )


def balanced_subset(labels: Tensor, n: int, seed: int) -> Tensor:
    """Indices (in dataset order) of ``n`` images with the same number of each class in ``labels``,
    each class's drawn at random with ``seed``: the same seed gives the same images."""
    classes = labels.unique()
    per_class, left = divmod(n, len(classes))
    if left:
        raise ConfigError(f"data.subset={n}: must be a multiple of the {len(classes)} classes kept, so each has as many "
                          f"images (e.g. {max(per_class, 1) * len(classes)})")
    generator = torch.Generator().manual_seed(int(seed))
    chosen = []
    for c in classes.tolist():
        members = (labels == c).nonzero().flatten()
        if len(members) < per_class:
            raise ConfigError(f"data.subset={n} asks for {per_class} images of class {c}, which has {len(members)}: "
                              "lower data.subset")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def _check_digits(digits) -> list[int] | None:
    """``data.digits``: null (all ten classes) or a non-empty list of labels 0-9."""
    if digits is None:
        return None
    ok = not isinstance(digits, (str, bytes)) and hasattr(digits, "__iter__") and len(digits) > 0
    ok = ok and all(is_int(d) and 0 <= d <= 9 for d in digits)
    if not ok:
        raise ConfigError(f"data.digits={fmt(digits)}: must be null (all ten) or a non-empty list of digits 0-9, e.g. [7]")
    return sorted({int(d) for d in digits})
