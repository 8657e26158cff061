"""Run one measurement in this process and print it as JSON: ``python -m bench.one RECIPE KIND N WARMUP [overrides...]``.

Each measurement runs in its own process so that its peak resident memory is its own.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import tempfile
import warnings

import torch


def main() -> None:
    recipe, kind, iterations, warmup, *overrides = sys.argv[1:]
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    from bench.plain import run_plain
    from bench.recipes import compose_recipe
    from bench.template import run_template

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_recipe(recipe, overrides, f"{tmp}/run")
        run = run_template if kind == "template" else run_plain
        its = run(cfg, int(iterations), int(warmup))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"its": its, "peak_rss_mb": peak_mb, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
