"""``make bench-contention``: training speed alone and beside a second CPU-bound process, under each
OpenMP thread setting: torch's defaults, ``OMP_WAIT_POLICY=PASSIVE`` and one thread.

A training's worker threads meet at a barrier after every parallel operation. With torch's
defaults, a thread that arrives early spins for a while before it sleeps; when another process
wants the same cores, those spinning threads take the time the late thread needs, so everyone
waits longer. PASSIVE makes waiting threads sleep at once. One thread has no barrier at all, but
on an idle machine uses half of two cores.

Each measurement is ``bench.one`` (the template's own training path, timed after a warm-up) in a
process of its own, started with the setting's environment; ``bench.one`` imports torch before
anything of ``gan`` (whose import sets ``GOMP_SPINCOUNT`` where the environment has no setting:
gan/__init__.py), so the environment it is given is what OpenMP reads. The competitor is a second
training of the same recipe under the same setting (``bench.one`` too, with a budget it never
reaches), started first and killed after the measurement. Settings are alternated
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

from bench.recipes import PROJECT
from bench.run import machine, measure

# name -> the environment that differs from the caller's (None: removed)
SETTINGS = {
    "torch defaults": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None, "GOMP_SPINCOUNT": None},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": None, "GOMP_SPINCOUNT": None},
    "1 thread": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": None},
    # a short spin before sleeping (GNU OpenMP's default is 300000 spins, about a millisecond)
    "GOMP_SPINCOUNT=10000": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None, "GOMP_SPINCOUNT": "10000"},
    "GOMP_SPINCOUNT=1000": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None, "GOMP_SPINCOUNT": "1000"},
}
# what make bench-contention measures unless --settings says otherwise; the last is the project's
# own setting (gan/__init__.py)
MEASURED = ("torch defaults", "OMP_WAIT_POLICY=PASSIVE", "1 thread", "GOMP_SPINCOUNT=1000")
PLACES = {"alone": False, "beside a second training": True}
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
    """A second training of ``recipe`` through the same path as the measured one (``bench.one``,
    which imports torch before ``gan``, so the setting's environment is what OpenMP reads there
    too), with a budget it never reaches; its temporary files go to ``folder``."""
    cmd = [sys.executable, "-m", "bench.one", recipe, "template", "1000000", "5"]
    return subprocess.Popen(cmd, cwd=PROJECT, env={**env, "TMPDIR": folder}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


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
    parser.add_argument("--settings", default=",".join(MEASURED), help=f"comma-separated, of: {', '.join(SETTINGS)}")
    parser.add_argument("--places", default="alone,beside", help="alone, beside (a second training), or both")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the timed iterations")
    parser.add_argument("--recipes", default=",".join(COUNTS), help=f"comma-separated, of {', '.join(COUNTS)}")
    parser.add_argument("--out", default=str(PROJECT / "outputs" / "bench_contention.json"))
    args = parser.parse_args(argv)
    recipes = [r for r in args.recipes.split(",") if r]
    unknown = [r for r in recipes if r not in COUNTS]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}: choose from {', '.join(COUNTS)}")

    names = [name for name in args.settings.split(",") if name]
    if any(name not in SETTINGS for name in names):
        parser.error(f"--settings {args.settings}: choose from {', '.join(SETTINGS)}")
    settings = {name: SETTINGS[name] for name in names}
    places = {where: contended for where, contended in PLACES.items() if where.split()[0] in args.places.split(",")}
    if not settings or not places:
        parser.error("--settings and --places must name at least one of theirs")
    started = time.time()
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    for _ in range(args.rounds):
        for recipe in recipes:
            for where, contended in places.items():
                for name, setting in settings.items():
                    its = measure_in(recipe, setting, contended, args.scale)
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
    lines = ["| recipe | where | setting | it/s (each round) | mean | vs the first setting (torch defaults) |", "|---|---|---|---|---|---|"]
    for recipe, places in runs.items():
        for where, settings in places.items():
            base = statistics.mean(settings.get("torch defaults") or next(iter(settings.values())))
            for name, values in settings.items():
                mean = statistics.mean(values)
                each = " ".join(f"{v:.2f}" for v in values)
                lines.append(f"| {recipe} | {where} | {name} | {each} | {mean:.2f} | {mean / base:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
