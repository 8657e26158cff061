"""``make bench-contention``: training speed alone and beside a second CPU-bound process, under each
OpenMP thread setting: torch's defaults, ``OMP_WAIT_POLICY=PASSIVE`` and one thread.

A training's worker threads meet at a barrier after every parallel operation. With torch's
defaults, a thread that arrives early spins for a while before it sleeps; when another process
wants the same cores, those spinning threads take the time the late thread needs, so everyone
waits longer. PASSIVE makes waiting threads sleep at once. One thread has no barrier at all, but
on an idle machine uses half of two cores.

Each measurement is ``bench.one`` (the template's own training path, timed after a warm-up) in a
process of its own, started with the setting's environment; ``bench.one`` imports torch before
anything of ``gan``, so the environment it is given is what OpenMP reads. The competitor is a
second training of the same recipe under the same setting (``python -m gan.train``, a long
budget, no evaluation), started first and killed after the measurement. Settings are alternated
within each round, so drift of the machine falls on all of them alike. Results go to
``outputs/bench_contention.json`` and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.recipes import PROJECT, RECIPES
from bench.run import machine, measure

# name -> the environment that differs from the caller's (None: removed)
SETTINGS = {
    "torch defaults": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": None},
    "1 thread": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": "1"},
}
# timed iterations and warm-up per recipe: the default recipe (make train's) and the MLP GAN
COUNTS = {"default": (30, 5), "cs231n_gan": (300, 30)}
# seconds the competitor gets to start (imports, data) before the measured run starts
COMPETITOR_START = 12.0


def environment(setting: dict[str, str | None]) -> dict[str, str]:
    env = os.environ.copy()
    for key, value in setting.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def start_competitor(recipe: str, env: dict[str, str], folder: str) -> subprocess.Popen:
    """A second training of ``recipe`` (a long budget, no evaluation, no files worth keeping)."""
    cmd = [sys.executable, "-m", "gan.train", *RECIPES[recipe], "iterations=1000000", "callbacks.evaluation=null",
           "callbacks.progress_bar=null", "print_config=false", "checkpoint_every=1000000", "sample_every=1000000",
           f"paths.log_dir={folder}"]
    return subprocess.Popen(cmd, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def measure_in(recipe: str, setting: dict[str, str | None], contended: bool, scale: float = 1.0) -> float:
    """Iterations per second of ``recipe`` under ``setting``, alone or beside a competitor."""
    n, warmup = COUNTS[recipe]
    n = max(5, int(n * scale))
    saved = os.environ.copy()
    env = environment(setting)
    with tempfile.TemporaryDirectory(prefix="gan-contention-") as folder:
        competitor = start_competitor(recipe, env, folder) if contended else None
        try:
            if competitor is not None:
                time.sleep(COMPETITOR_START)
                if competitor.poll() is not None:
                    raise RuntimeError(f"the competing training exited with status {competitor.returncode}")
            os.environ.clear()
            os.environ.update(env)  # measure() hands its process this environment
            return measure(recipe, "template", n, warmup)["its"]
        finally:
            os.environ.clear()
            os.environ.update(saved)
            if competitor is not None:
                stop(competitor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each measures every setting once")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the timed iterations")
    parser.add_argument("--recipes", default=",".join(COUNTS), help=f"comma-separated, of {', '.join(COUNTS)}")
    parser.add_argument("--out", default=str(PROJECT / "outputs" / "bench_contention.json"))
    args = parser.parse_args(argv)
    recipes = [r for r in args.recipes.split(",") if r]
    unknown = [r for r in recipes if r not in COUNTS]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}: choose from {', '.join(COUNTS)}")

    started = time.time()
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    for _ in range(args.rounds):
        for recipe in recipes:
            for contended in (False, True):
                for name, setting in SETTINGS.items():
                    its = measure_in(recipe, setting, contended, args.scale)
                    where = "beside a second training" if contended else "alone"
                    runs.setdefault(recipe, {}).setdefault(where, {}).setdefault(name, []).append(its)
                    print(f"{recipe}, {where}, {name}: {its:.2f} it/s", flush=True)
    result = {"runs": runs, "machine": machine(), "wall_seconds": round(time.time() - started, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(runs))
    print(f"\nwrote {out}")
    return 0


def table(runs: dict[str, dict[str, dict[str, list[float]]]]) -> str:
    """Mean it/s of each recipe, place and setting, and its ratio to torch's defaults there."""
    lines = ["| recipe | where | setting | it/s (each round) | mean | vs torch defaults |", "|---|---|---|---|---|---|"]
    for recipe, places in runs.items():
        for where, settings in places.items():
            base = statistics.mean(settings["torch defaults"])
            for name, values in settings.items():
                mean = statistics.mean(values)
                each = " ".join(f"{v:.2f}" for v in values)
                lines.append(f"| {recipe} | {where} | {name} | {each} | {mean:.2f} | {mean / base:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
