"""MNIST and Fashion-MNIST: the LightningDataModule (:mod:`gan.data.datamodule`), its IDX reader
(:mod:`gan.data.idx`), and the images' value ranges (:mod:`gan.data.images`).

The data module's names are served from here on first use, so that the run plumbing can import the
reader's error types (``gan.data.idx``) without importing the data module, which imports it back.
"""

import importlib

EXPORTED = ("ROOT_ENV", "SPLIT_FILES", "DataNotFoundError", "EpochBatchSampler", "ImageBatches", "MNISTDataModule",
            "balanced_subset", "load_split", "locate_split")
__all__ = list(EXPORTED)


def __getattr__(name: str):
    if name in EXPORTED:
        return getattr(importlib.import_module("gan.data.datamodule"), name)
    raise AttributeError(f"module 'gan.data' has no attribute {name!r}")
