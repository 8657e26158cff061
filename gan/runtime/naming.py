"""Names of run folders, which are also the run names TensorBoard shows (the relative path of each
run's ``tensorboard`` folder under ``--logdir outputs``):

- a run: ``outputs/runs/<date>/<time>_<experiment or model>`` (``hydra.run.dir``);
- a sweep: ``outputs/multiruns/<date>/<time>/<job number>_<overrides>``, the
  overrides being Hydra's ``override_dirname`` of the job without the keys that only say where
  things are (``hydra.job.config.override_dirname.exclude_keys``), with long floats shortened.

The two OmegaConf resolvers below are registered when this module is imported (``gan.train`` does,
before Hydra resolves its folders).
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import OmegaConf

# at most this many characters of overrides in a job's folder name (a file name holds 255 bytes)
MAX_OVERRIDES_CHARS = 200
_LONG_FLOAT = re.compile(r"(?<![\w.])(-?\d+\.\d{5,}(?:[eE][-+]?\d+)?|-?\d+(?:\.\d+)?[eE][-+]?\d+)(?![\w.])")


def run_name(experiment: Any, model: Any) -> str:
    """``experiment`` when one is chosen, else ``model``, else ``run``."""
    for choice in (experiment, model):
        if choice not in (None, "", "null", "None"):
            return str(choice).replace("/", "-")
    return "run"


def job_name(num: Any, override_dirname: Any) -> str:
    """``<num>_<overrides>``: the job number keeps names unique and ordered; floats of many digits
    (an Optuna trial's) are written with 4 significant digits, ``/`` becomes ``-``, and the text is
    cut at :data:`MAX_OVERRIDES_CHARS`. Just ``<num>`` when no override is left."""
    text = _LONG_FLOAT.sub(lambda m: f"{float(m.group(1)):.4g}", str(override_dirname or ""))
    text = text.replace("/", "-")[:MAX_OVERRIDES_CHARS]
    return f"{num}_{text}" if text else str(num)


def register_resolvers() -> None:
    """``${gan.run_name:experiment,model}`` and ``${gan.job_name:num,override_dirname}``."""
    for name, function in (("gan.run_name", run_name), ("gan.job_name", job_name)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


register_resolvers()
