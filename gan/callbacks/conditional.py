"""The by-class grid of a conditional GAN: row k is label k, each column one fixed noise vector, so a
column shows one "style" across the classes and a row how varied one class is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from torchvision.utils import make_grid, save_image

from gan.runtime.config import positive_int
from gan.runtime.files import write_atomically
from gan.metrics.generate import class_grid_inputs, unit_images
from gan.metrics.conditional import class_names
from gan.runtime.tensorboard import add_to_loggers

TAG = "samples/by_class"


class ClassGrid(Callback):
    """Every ``every`` GAN iterations, at iteration 1 and at the end: ``samples/by_class`` in TensorBoard
    (its rows' class names once, as text) and ``by_class.png`` in ``dirpath``. The noise is the first
    ``columns`` of the module's fixed noise. Does nothing for an unconditional GAN."""

    def __init__(self, every: int = 500, dirpath: str | None = None, columns: int = 8, dataset: str = "MNIST") -> None:
        self.every = positive_int("sample_every", every)
        self.dirpath = Path(dirpath) if dirpath else None
        self.columns = positive_int("callbacks.class_grid.columns", columns)
        self.names = class_names(dataset)
        self.last_drawn: int | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        it = pl_module.iteration
        if it % self.every == 0 or it == 1 or trainer.should_stop:
            self.draw(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.last_drawn != pl_module.iteration:
            self.draw(trainer, pl_module)

    def caption(self, classes: int) -> str:
        return "rows, top to bottom: " + ", ".join(f"{k} {self.names[k]}" for k in range(classes))

    def draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.last_drawn = pl_module.iteration
        classes = getattr(pl_module, "num_classes", None)
        if classes is None or not trainer.is_global_zero:
            return
        z, labels = class_grid_inputs(pl_module.fixed_noise[: self.columns], classes)
        grid = make_grid(unit_images(pl_module.sampling_generator, z, labels), nrow=self.columns, padding=2, pad_value=1.0)
        add_to_loggers(trainer, "image", TAG, grid, pl_module.iteration)
        if pl_module.iteration == 1:
            add_to_loggers(trainer, "text", TAG, self.caption(classes), pl_module.iteration)
        if self.dirpath is not None:
            write_atomically(self.dirpath / "by_class.png", lambda p: save_image(grid, p))
