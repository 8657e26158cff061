"""``make bench``: the template against a plain PyTorch loop, the speed switches, and memory.

For each recipe the template and the plain loop run the same number of GAN iterations after a
warm-up, alternated A B A B to cancel drift, each in its own process; the table reports the
mean iterations per second of each, their ratio (template / plain: the median of the A/B pairs'
ratios) and the peak resident memory. Switch rows run the template with one switch on. Results go to outputs/bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.efficiency import ROOF_SIZE, efficiency, roof
from bench.recipes import PROJECT
from gan.runtime.precision import cpu_bf16_flags

# (iterations measured after the warm-up, warm-up iterations, A B rounds) per recipe; the DCGAN
# costs ~12x the MLP per iteration, and the MLP's short runs are the noisier, so it gets more rounds
DEFAULT_ITERATIONS = {"cs231n_gan": (300, 30, 4), "cs231n_dcgan": (40, 6, 2)}
ROOF_LABEL = f"{ROOF_SIZE}^3, best of 7"
# (iterations, warm-up, rounds) of the make-train-sized recipes measured alone (recipe_rates): the
# default recipe under each precision, and experiment=conditional
DEFAULT_RECIPE = (60, 10, 2)
PRECISIONS = {"auto": [], "fp32": ["trainer.precision=32-true"]}
BF16 = {"bf16": ["trainer.precision=bf16-mixed"]}
SWITCHES = {
    "reuse_fake": ["model.speed.reuse_fake=true"],
    "channels_last": ["model.speed.channels_last=true"],
    "unfused_adam": ["model.optimizer_g.fused=false", "model.optimizer_d.fused=false"],
    "compile": ["model.speed.compile=true"],
    "reuse_fake+channels_last": ["model.speed.reuse_fake=true", "model.speed.channels_last=true"],
}


def measure(recipe: str, kind: str, iterations: int, warmup: int, overrides: list[str] = ()) -> dict:
    cmd = [sys.executable, "-m", "bench.one", recipe, kind, str(iterations), str(warmup), *overrides]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def compare(recipe: str, iterations: int, warmup: int, rounds: int) -> dict:
    """``rounds`` A B pairs; ``ratio`` is the median of the pairs' template/plain ratios (each pair
    ran back to back, so drift of the machine cancels within it), ``template_its``/``plain_its``
    the means over the runs."""
    template, plain, rss, plain_rss = [], [], [], []
    for _ in range(rounds):  # A B A B
        t = measure(recipe, "template", iterations, warmup)
        p = measure(recipe, "plain", iterations, warmup)
        template.append(t["its"])
        plain.append(p["its"])
        rss.append(t["peak_rss_mb"])
        plain_rss.append(p["peak_rss_mb"])
    pairs = [t / p for t, p in zip(template, plain)]
    return {
        "template_its": round(statistics.mean(template), 3), "plain_its": round(statistics.mean(plain), 3),
        "ratio": round(statistics.median(pairs), 3), "pair_ratios": [round(r, 3) for r in pairs],
        "peak_rss_mb": round(max(rss), 1), "plain_peak_rss_mb": round(max(plain_rss), 1),
        "template_runs": [round(x, 3) for x in template], "plain_runs": [round(x, 3) for x in plain],
        "iterations": iterations, "warmup": warmup,
    }


def recipe_rates(recipe: str, precisions: dict[str, list[str]], scale: float, rounds: int | None) -> dict[str, float]:
    """Iterations per second of ``recipe`` (a ``make train``-sized recipe: ``DEFAULT_RECIPE``'s
    counts) under each of ``precisions`` (name -> overrides), alternated. The auto runs are named by
    the precision ``auto`` resolved to in them (``auto = 32-true``; a second name if two runs chose
    differently)."""
    n, warm, default_rounds = DEFAULT_RECIPE
    n = max(5, int(n * scale))
    runs: dict[str, list[float]] = {}
    for _ in range(rounds or default_rounds):
        for name, overrides in precisions.items():
            run = measure(recipe, "template", n, warm, overrides)
            label = f"auto = {run['precision']}" if name == "auto" else name
            runs.setdefault(label, []).append(run["its"])
    return {name: statistics.mean(r) for name, r in runs.items()}


def efficiency_rows(result: dict, scale: float, rounds: int | None) -> dict:
    """Per recipe: GFLOP per GAN iteration (counted on one real iteration), GFLOP/s at the measured
    rate and its share of this run's fp32 roof (bf16 rows count fp32-equivalent FLOPs)."""
    fp32_roof = result["roof"]["fp32_gflops"]
    rows = {}
    # the default recipe under each precision (bf16 where the CPU has bf16 instructions; auto takes
    # it only where it measures faster), and its conditional variant as auto chooses
    for recipe, precisions in (("default", PRECISIONS | (BF16 if cpu_bf16_flags() else {})), ("conditional", {"auto": []})):
        gflop = measure(recipe, "flops", 0, 0)["gflop_per_it"]
        for name, its in recipe_rates(recipe, precisions, scale, rounds).items():
            rows[f"{recipe} ({name})"] = {"its": round(its, 3), **efficiency(gflop, its, fp32_roof)}
    for recipe in DEFAULT_ITERATIONS:
        gflop = measure(recipe, "flops", 0, 0)["gflop_per_it"]
        rows[recipe] = {"its": result[recipe]["template_its"], **efficiency(gflop, result[recipe]["template_its"], fp32_roof)}
    for name, row in rows.items():
        print(f"efficiency {name}: {row}", flush=True)
    return rows


# time to quality: the default recipe against the tutorial DCGAN it replaced
QUALITY_RECIPES = ("default", "cs231n_dcgan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="A B pairs per recipe (default: 4 MLP, 2 DCGAN)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the iteration counts")
    parser.add_argument("--no-switches", action="store_true", help="skip the switch rows")
    parser.add_argument("--switch-recipe", default="cs231n_dcgan")
    parser.add_argument("--no-quality", action="store_true", help="skip the time-to-quality run")
    parser.add_argument("--no-efficiency", action="store_true", help="skip the default recipe's rows and the FLOP counts")
    parser.add_argument("--fid-thresholds", default="50,20,10", help="FIDs whose first crossing is timed")
    parser.add_argument("--quality-iterations", type=int, default=3500,
                        help="budget of the time-to-quality runs (the default recipe's schedules decay over it)")
    parser.add_argument("--quality-seconds", type=float, default=600.0,
                        help="stop a time-to-quality run after this many seconds of training")
    parser.add_argument("--quality-eval-every", type=int, default=250)
    parser.add_argument("--quality-samples", type=int, default=2000, help="samples per evaluation (gan.evaluate's FID)")
    parser.add_argument("--out", default=str(PROJECT / "outputs" / "bench.json"))
    args = parser.parse_args(argv)

    started = time.time()
    result: dict = {"roof": roof()}
    print(f"roof: {result['roof']}", flush=True)
    for recipe, (n, warm, rounds) in DEFAULT_ITERATIONS.items():
        n = max(5, int(n * args.scale))
        result[recipe] = compare(recipe, n, warm, args.rounds or rounds)
        print(f"{recipe}: {result[recipe]}", flush=True)
    if not args.no_efficiency:
        result["efficiency"] = efficiency_rows(result, args.scale, args.rounds)

    switches: dict = {}
    if not args.no_switches:
        n, warm, _ = DEFAULT_ITERATIONS[args.switch_recipe]
        n = max(5, int(n * args.scale))
        base = result[args.switch_recipe]["plain_its"]
        for name, overrides in SWITCHES.items():
            its = measure(args.switch_recipe, "template", n, warm, overrides)["its"]
            switches[name] = {"its": round(its, 3), "vs_plain": round(its / base, 3),
                              "vs_template_default": round(its / result[args.switch_recipe]["template_its"], 3)}
            print(f"switch {name}: {switches[name]}", flush=True)
        switches["bf16_mixed"] = (
            {"its": round(measure(args.switch_recipe, "template", n, warm,
                                  ["trainer=gpu", "trainer.precision=bf16-mixed"])["its"], 3)}
            if torch.cuda.is_available() else {"skipped": "no CUDA GPU here (CPU bf16 is chosen by trainer.precision=auto where the CPU has bf16 matrix instructions)"}
        )
    result["switches"] = {"recipe": args.switch_recipe, **switches}

    if not args.no_quality:
        os.environ.update(BENCH_FID_THRESHOLDS=args.fid_thresholds, BENCH_MAX_SECONDS=str(args.quality_seconds),
                          BENCH_EVAL_SAMPLES=str(args.quality_samples))
        result["time_to_quality"] = {}
        for recipe in QUALITY_RECIPES:
            quality = measure(recipe, "quality", args.quality_iterations, args.quality_eval_every)
            quality.pop("threads", None)
            result["time_to_quality"][recipe] = quality
            print(f"time to quality, {recipe}: {quality}", flush=True)
    result["machine"] = machine()
    result["machine"]["wall_seconds"] = round(time.time() - started, 1)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {out}")
    return 0


def print_table(result: dict) -> None:
    machine_roof = result.get("roof")
    if machine_roof:
        bf16 = f", bf16 {machine_roof['bf16_gflops']} GFLOP/s" if "bf16_gflops" in machine_roof else ""
        print(f"\nthis CPU: {machine_roof['kind']} ({machine_roof['cpu_capability']}); matmul roof {ROOF_LABEL}: "
              f"fp32 {machine_roof['fp32_gflops']} GFLOP/s{bf16}")
    rows = result.get("efficiency")
    if rows:
        print("\n| recipe | it/s | GFLOP per GAN iteration | GFLOP/s | share of the fp32 roof |")
        print("|---|---|---|---|---|")
        for name, r in rows.items():
            print(f"| {name} | {r['its']:.2f} | {r['gflop_per_it']:.3f} | {r['gflops']:.1f} | {100 * r['of_fp32_roof']:.0f}% |")
    print("\n| recipe | template it/s | plain it/s | ratio (median of pairs) | pair ratios | peak RSS template / plain (MB) |")
    print("|---|---|---|---|---|---|")
    for recipe in DEFAULT_ITERATIONS:
        r = result[recipe]
        pairs = " ".join(f"{x:.2f}" for x in r["pair_ratios"])
        print(f"| {recipe} | {r['template_its']:.2f} | {r['plain_its']:.2f} | {r['ratio']:.3f} | {pairs} | "
              f"{r['peak_rss_mb']:.0f} / {r['plain_peak_rss_mb']:.0f} |")
    switches = {k: v for k, v in result.get("switches", {}).items() if k != "recipe"}
    if switches:
        print(f"\n| switch ({result['switches']['recipe']}) | it/s | vs plain | vs template default |")
        print("|---|---|---|---|")
        for name, s in switches.items():
            if "its" in s and "vs_plain" in s:
                print(f"| {name} | {s['its']:.2f} | {s['vs_plain']:.3f} | {s['vs_template_default']:.3f} |")
            else:
                print(f"| {name} | {s.get('its', '-')} | {s.get('skipped', '')} | |")
    for recipe, quality in (result.get("time_to_quality") or {}).items():
        print(f"\ntime to quality, {recipe} ({quality['eval_samples']} samples every {quality['eval_every']} "
              f"iterations, budget {quality['max_iterations']} iterations or {quality['max_seconds']} s):")
        for threshold, point in quality["reached"].items():
            print(f"  FID < {threshold}: " + (f"{point['seconds']} s (iteration {point['iteration']})" if point
                                             else "not reached"))
        print("  FID trace: " + ", ".join(f"{p['iteration']}: {p['fid']} @ {p['seconds']} s" for p in quality["trace"]))


if __name__ == "__main__":
    sys.exit(main())
