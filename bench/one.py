"""Run one measurement in this process and print it as JSON: ``python -m bench.one RECIPE KIND N WARMUP [overrides...]``.

Each measurement runs in its own process so that its peak resident memory is its own.
"""

from __future__ import annotations

import json
import logging
import os
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
    from bench.quality import time_to_quality
    from bench.recipes import compose_recipe
    from bench.template import run_template

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_recipe(recipe, overrides, f"{tmp}/run")
        if kind == "flops":  # the work of one GAN iteration of the recipe
            from bench.efficiency import gflop_per_iteration

            result = {"gflop_per_it": gflop_per_iteration(cfg)}
        elif kind == "quality":  # iterations = the budget; warmup = eval_every
            thresholds = [float(t) for t in os.environ.get("BENCH_FID_THRESHOLDS", "50,20,10").split(",")]
            max_seconds = os.environ.get("BENCH_MAX_SECONDS")
            result = time_to_quality(cfg, thresholds, int(iterations), int(warmup),
                                     int(os.environ.get("BENCH_EVAL_SAMPLES", "2000")),
                                     float(max_seconds) if max_seconds else None)
        else:
            run = run_template if kind == "template" else run_plain
            result = {"its": run(cfg, int(iterations), int(warmup))}
            if kind == "template":  # what trainer.precision=auto resolved to in this run (gan.runtime.build)
                result["precision"] = str(cfg.trainer.precision)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
