"""``samples/timelapse.gif``: the fixed-noise grids kept by :class:`gan.callbacks.training.SampleGrids`
(``fixed_noise_<iteration>.png``, one per ``sample_every``), in order, each captioned with its GAN
iteration, written when training ends (rank 0; a resumed run's gif covers the whole run)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from gan.runtime.files import write_atomically
from gan.runtime.pictures import kept_frames, write_timelapse

log = logging.getLogger(__name__)

TIMELAPSE = "timelapse.gif"


class Timelapse(Callback):
    """Assemble ``<dirpath>/timelapse.gif`` from the frames in ``dirpath`` when training ends.
    List it after ``sample_grids``, so the last grid is among the frames."""

    def __init__(self, dirpath: str, frame_ms: int = 400) -> None:
        self.dirpath = Path(dirpath)
        self.frame_ms = int(frame_ms)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        frames = kept_frames(self.dirpath)
        if frames:
            write_atomically(self.dirpath / TIMELAPSE, lambda p: write_timelapse(frames, p, self.frame_ms))
            log.info("timelapse of %d grids: %s", len(frames), self.dirpath / TIMELAPSE)
