"""Checkpoints: where they live in a run folder, writing them atomically, finding and loading them.

A run folder holds ``checkpoints/last.ckpt`` (the newest state) and ``checkpoints/best_fid.ckpt``
(the state with the lowest FID so far). The names are defined here and nowhere else; callbacks that
write checkpoints default to :func:`checkpoint_dir` of the trainer's run folder.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from gan.runtime.errors import NonFiniteError, RunError
from gan.runtime.files import temporary_name
from gan.runtime.runs import CONFIG_FILE

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
BEST_FID = "best_fid.ckpt"
# Network modules renamed after their model configs: checkpoints of older versions name the old ones.
RENAMED_TARGETS = {"gan.nets.keras.": "gan.nets.keras_dcgan.", "gan.nets.paddle.": "gan.nets.paddle_dcgan.",
                   "gan.nets.maxout.": "gan.nets.renom_maxout."}
# the conditional settings older configs kept flat in ``model``
FLAT_CONDITIONAL = ("label_dim", "label_std", "class_norm", "fake_labels")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def last_checkpoint(run_dir: str | Path) -> Path:
    return checkpoint_dir(run_dir) / LAST


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/x.ckpt``), if it has that layout."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINT_DIR else None


def save_atomically(trainer: pl.Trainer, pl_module: pl.LightningModule, path: Path) -> None:
    """Write a full checkpoint to ``path`` through a temporary file and a rename, so ``path`` is
    always complete whatever moment the process dies at. Weights that are not finite are never
    written: :class:`NonFiniteError` is raised and ``path`` keeps the last good state.
    Every rank calls this (Lightning gathers sharded state); rank 0 alone writes and renames.
    """
    if not all(bool(torch.isfinite(p).all()) for p in pl_module.parameters()):
        raise NonFiniteError(
            f"the weights at GAN iteration {pl_module.iteration} are not finite: {path} is "
            "left as it was (the last good checkpoint)"
        )
    path = Path(path)
    if trainer.is_global_zero:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        trainer.save_checkpoint(tmp, weights_only=False)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            tmp.replace(path)
    except OSError as err:
        raise RunError(f"could not write {path}: {err.strerror or err}; "
                       f"{path.name} is left as it was{' (the last good state)' if path.exists() else ''}") from None
    finally:
        if trainer.is_global_zero:
            tmp.unlink(missing_ok=True)
    trainer.strategy.barrier(f"gan-checkpoint-{path.name}")


def resolve_checkpoint(ckpt_path: str | None, log_dir: str | Path) -> Path | None:
    """``None``, an existing checkpoint file, or for ``"last"`` the newest ``last.ckpt`` under ``log_dir``."""
    if ckpt_path in (None, ""):
        return None
    if str(ckpt_path) == "last":
        found = sorted(Path(log_dir).glob(f"**/{CHECKPOINT_DIR}/{LAST}"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise RunError(f"ckpt_path=last: no {CHECKPOINT_DIR}/{LAST} under {log_dir}; train a run first or pass a path")
        return found[-1]
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise RunError(f"ckpt_path={ckpt_path}: no such file. Pass a .ckpt written by gan.train, or ckpt_path=last")
    return path


def load_checkpoint(path: str | Path, trust: bool = False) -> dict:
    """Load a checkpoint written by gan.train, with one clear error for anything else.

    It is unpickled with ``weights_only=True``: tensors and plain data only, so a file from a
    stranger cannot run code when loaded (the template stores its config as plain data). A file that
    needs any other type is refused, naming it; ``trust=True`` (``trust_checkpoint=true`` on the
    command lines) unpickles it in full, for files you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as err:
        if trust or _unsafe_global(err) is None:
            raise RunError(f"{path} is not a readable checkpoint ({type(err).__name__}); it may be truncated") from None
        raise RunError(
            f"{path} needs {_unsafe_global(err)} to be unpickled, which could run code: refused. Only if you "
            "trust this file (e.g. one you wrote with an older version), pass trust_checkpoint=true"
        ) from None
    except Exception as err:
        raise RunError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err}); it may be truncated") from err
    if not isinstance(ckpt, dict) or "gan" not in ckpt or "state_dict" not in ckpt:
        raise RunError(f"{path} was not written by gan.train (it has no 'gan' section)")
    return ckpt


def _unsafe_global(err: Exception) -> str | None:
    """The type torch's safe unpickler refused, from its message ("Unsupported global: GLOBAL os.system
    ..."); None when the file is simply not a pickle."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    return found.group(1) if found else None


def checkpoint_config(ckpt: dict, path: str | Path) -> DictConfig:
    """The composed config of the run that wrote ``ckpt``: the copy inside it, else the run folder's
    (with the network modules' old names mapped to today's)."""
    stored = ckpt.get("gan", {}).get("config")
    if stored:
        cfg = OmegaConf.create(stored)
    else:
        run = run_dir_of(Path(path))
        if run is None or not (run / CONFIG_FILE).is_file():
            raise RunError(f"{path} carries no config and no {CONFIG_FILE} lies in its run folder")
        try:
            cfg = OmegaConf.load(run / CONFIG_FILE)
        except Exception as err:  # a hand edit that is not YAML any more
            reason = " ".join(str(err).split())
            raise RunError(f"{path} carries no config, and its run's {run / CONFIG_FILE} cannot be read "
                           f"({type(err).__name__}: {reason}); restore that file, or pass a checkpoint "
                           "that carries its config") from None
    for net in ("generator", "discriminator"):
        target = OmegaConf.select(cfg, f"model.{net}._target_")
        for old, new in RENAMED_TARGETS.items():
            if isinstance(target, str) and target.startswith(old):
                cfg.model[net]._target_ = new + target[len(old):]
    _group_flat_conditioning(cfg)
    return cfg


def _group_flat_conditioning(cfg: DictConfig) -> None:
    """Older configs kept the conditional settings flat in ``model`` (``conditioning``,
    ``label_dim``...); today's group them under ``model.conditional``."""
    model = cfg.get("model")
    if not isinstance(model, DictConfig) or "conditioning" not in model or "conditional" in model:
        return
    kind = model.get("conditioning")
    flat = {k: model[k] for k in FLAT_CONDITIONAL if k in model}
    with open_dict(model):
        model.conditional = None if kind is None else {"_target_": "gan.settings.Conditioning", "kind": kind, **flat}


def check_fits(ckpt: dict, model: torch.nn.Module, path: str | Path) -> None:
    """Refuse, in one line naming the first tensor that differs (in order: the generator's first
    layer first), a checkpoint whose weights the composed model cannot take: a resume with other
    model settings than the run that wrote it."""
    theirs = [(k, tuple(v.shape)) for k, v in ckpt["state_dict"].items()]
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    if sorted(theirs) == sorted(ours):
        return
    hint = "resume with the model settings of the run that wrote it"
    run = run_dir_of(Path(path))
    if run is not None and (run / CONFIG_FILE).is_file():
        hint += f" (its {run / CONFIG_FILE})"
    for network in sorted({k.split(".", 1)[0] for k, _ in ours + theirs}, key=lambda n: n != "generator"):
        a = [(k, shape) for k, shape in theirs if k.split(".", 1)[0] == network]
        b = [(k, shape) for k, shape in ours if k.split(".", 1)[0] == network]
        for i in range(max(len(a), len(b))):
            if i < len(a) and i < len(b) and a[i] == b[i]:
                continue
            have = f"{a[i][0]} {list(a[i][1])}" if i < len(a) else "nothing more"
            want = f"{b[i][0]} {list(b[i][1])}" if i < len(b) else "nothing more"
            raise RunError(f"{path} does not fit this model: its {network} differs at tensor {i + 1}, {have} in the "
                           f"checkpoint but {want} here; {hint}")


def check_resumable(ckpt: dict, cfg: DictConfig, path: Path) -> None:
    """Refuse a resume that could only go wrong: a budget below the iteration the checkpoint has
    reached (it would rewrite the run's files with a shorter budget), or another dataset than the
    one the checkpoint was trained on (it would train on the wrong images, silently)."""
    at, budget = int(ckpt["gan"]["iteration"]), cfg.get("iterations")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget < at:
        raise RunError(f"iterations={budget}: {path} is already at GAN iteration {at}; set iterations above {at} "
                       f"to train on, or sample from it with python -m gan.sample ckpt={path}")
    theirs = (((ckpt["gan"].get("config") or {}).get("data")) or {}).get("dataset")
    if theirs and theirs != cfg.data.get("dataset"):
        raise RunError(f"{path} was trained on {theirs}, but data.dataset={cfg.data.get('dataset')}: resume with "
                       f"the data of the run that wrote it (data.dataset={theirs})")
