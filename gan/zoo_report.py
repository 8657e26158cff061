"""``make zoo-report``: train every tutorial recipe for the same CPU budget, then score each.

    python -m gan.zoo_report [budget=00:00:02:00] [n=5000] [experiments=cs231n_gan,wgan] [out=DIR] [recipe=full]

Each experiment trains for at most ``budget`` of wall time (Lightning's ``max_time``; shorter
recipes such as tf_simple_gan stop at their own length), in ``<out>/<experiment>/``, and its
``last.ckpt`` is scored by :mod:`gan.evaluate` with ``n`` samples. The table (markdown, with the
floor of real data in its last row) is printed and written to ``<out>/zoo_report.md`` and
``<out>/zoo_report.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from gan.callbacks.training import STOPPED_BY_SIGNAL
from gan.runtime.checkpoints import last_checkpoint, load_checkpoint
from gan.runtime.files import write_atomically
from gan.metrics.generate import load_generator, sample_images
from gan.metrics.evaluator import Evaluator
from gan.train import train

PROJECT = Path(__file__).resolve().parents[1]
COLUMNS = ("fid", "kid", "precision", "recall", "coverage")


def experiments() -> list[str]:
    return sorted(p.stem for p in (PROJECT / "conf" / "experiment").glob("*.yaml"))


def train_one(name: str, budget: str, run_dir: Path, resume: Path | None = None) -> tuple[Path, int, float]:
    """Train ``name`` for ``budget`` into ``run_dir`` (or go on from ``resume``, the ``last.ckpt`` of
    an interrupted attempt: the wall-clock budget already spent comes back with it)."""
    with initialize_config_dir(config_dir=str(PROJECT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            f"experiment={name}", "iterations=null", "trainer.max_epochs=-1", f"+trainer.max_time={budget}",
            "callbacks.evaluation=null", "callbacks.progress_bar=null", "+trainer.enable_progress_bar=false",
        ])
    with open_dict(cfg):
        if name == "tf_simple_gan":  # a 500-iteration recipe: keep its own length
            cfg.iterations = 500
        cfg.paths.output_dir = str(run_dir)
        cfg.paths.log_dir = str(run_dir.parent)
        if resume is not None:
            cfg.ckpt_path = str(resume)
    started = time.perf_counter()
    metrics = train(cfg)
    if metrics.get(STOPPED_BY_SIGNAL):
        raise SystemExit(f"zoo report stopped by a signal during {name} (its run is in {run_dir}); no table written")
    seconds = time.perf_counter() - started
    ckpt = last_checkpoint(run_dir)
    # from the checkpoint: a resumed run whose budget was already spent trains no batch at all
    return ckpt, int(load_checkpoint(ckpt)["gan"]["iteration"]), seconds


def trained_before(run_dir: Path) -> tuple[Path, int, float] | None:
    """The finished run of an earlier report in ``run_dir`` (its ``zoo_run.json`` is written only
    once training ended within the budget), if there is one."""
    ckpt = last_checkpoint(run_dir)
    note = run_dir / "zoo_run.json"
    if note.is_file() and ckpt.is_file():
        done = json.loads(note.read_text())
        return ckpt, int(done["iterations"]), float(done["train_seconds"])
    return None


def main(argv: list[str] | None = None) -> int:
    args = OmegaConf.from_dotlist(list(sys.argv[1:] if argv is None else argv))
    budget = str(args.get("budget", "00:00:02:00"))
    n = int(args.get("n", 5000))
    names = str(args.get("experiments")).split(",") if args.get("experiments") else experiments()
    out = Path(str(args.get("out", PROJECT / "outputs" / "zoo" / time.strftime("%Y-%m-%d_%H-%M-%S"))))

    evaluator = Evaluator.from_recipe(args.get("data_root"), str(args.get("recipe", "full")))
    rows, floor = {}, None
    for name in names:
        done = trained_before(out / name)
        if done is None:
            unfinished = last_checkpoint(out / name)
            if unfinished.is_file():
                print(f"{name}: an interrupted run in {out / name}: training on to the budget", flush=True)
            ckpt, iterations, seconds = train_one(name, budget, out / name, unfinished if unfinished.is_file() else None)
            write_atomically(out / name / "zoo_run.json", lambda p: p.write_text(
                json.dumps({"iterations": iterations, "train_seconds": round(seconds, 1)}) + "\n"))
        else:
            ckpt, iterations, seconds = done
            print(f"{name}: trained before in {out / name}, scoring it again", flush=True)
        generator, noise = load_generator(ckpt)
        report = evaluator.report(sample_images(generator, noise, n, seed=0))
        floor = report["floor"]
        rows[name] = {"iterations": iterations, "train_seconds": round(seconds, 1), **{k: report[k] for k in COLUMNS}}
        print(f"{name}: {rows[name]}", flush=True)

    lines = [
        f"| experiment | GAN iterations in {budget} | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['iterations']} | " + " | ".join(_fmt(row[k]) for k in COLUMNS) + " |")
    if floor is not None:
        lines.append("| *floor (real train vs test)* | | " + " | ".join(_fmt(floor[k]) for k in COLUMNS) + " |")
    table = "\n".join(lines)
    print(table)
    write_atomically(out / "zoo_report.md", lambda p: p.write_text(table + "\n"))
    write_atomically(out / "zoo_report.json", lambda p: p.write_text(
        json.dumps({"budget": budget, "n": n, "rows": rows, "floor": floor}, indent=2) + "\n"))
    print(f"wrote {out / 'zoo_report.md'}")
    return 0


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
