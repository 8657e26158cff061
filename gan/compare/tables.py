"""The comparison as text: a markdown table (the runs listed apart below it), CSV, or JSON with
every group's member runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from gan.compare.groups import Group, Stat
from gan.compare.runs import METRICS, Apart, Metric


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def shown_metrics(groups: Sequence[Group]) -> list[Metric]:
    """The metrics that at least one group has."""
    return [m for m in METRICS if any(g.stats(m) is not None for g in groups)]


def markdown(groups: Sequence[Group], columns: Sequence[str], apart: Sequence[Apart]) -> str:
    metrics = shown_metrics(groups)
    datasets = len({g.dataset for g in groups}) > 1
    head = [*columns, *(["dataset"] if datasets else []), "samples", "seeds"]
    for m in metrics:
        head += [m.label, f"best {m.label}"]
    head += ["iterations run", "wall time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group in groups:
        cells = [group.settings[c] for c in columns] + ([str(group.dataset)] if datasets else [])
        cells += [str(group.eval_samples) if group.eval_samples is not None else "—", str(len(group.runs))]
        for m in metrics:
            s = group.stats(m)
            if s is None:
                cells += ["—", "—"]
            else:
                spread = m.format(s.std) if s.std is not None else "—"
                cells += [f"{m.format(s.mean)} ± {spread}" + (f" (n={s.n})" if s.n < len(group.runs) else ""), m.format(s.best)]
        it, wall = group.iterations(), group.wall_time()
        cells.append("—" if it is None else f"{it.mean:.0f}" + (f" ± {it.std:.0f}" if it.std else ""))
        cells.append("—" if wall is None else _duration(wall.mean) + (f" ± {_duration(wall.std)}" if wall.std is not None else ""))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if apart:
        lines += ["", "Listed apart, not averaged:"]
        lines += [f"- {shown_path(a.path)}: {a.reason}" for a in apart]
    return "\n".join(lines)


def csv_text(groups: Sequence[Group], columns: Sequence[str]) -> str:
    metrics = shown_metrics(groups)
    head = [*columns, "dataset", "samples", "seeds"]
    for m in metrics:
        head += [f"{m.name}_mean", f"{m.name}_std", f"{m.name}_best"]
    head += ["iterations_run", "wall_time_s_mean", "wall_time_s_std"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)

    def number(value: float | None) -> str:
        return "" if value is None else repr(round(value, 6))

    for group in groups:
        row = [group.settings[c] for c in columns] + [group.dataset or "", group.eval_samples or "", len(group.runs)]
        for m in metrics:
            s = group.stats(m)
            row += [number(s.mean), number(s.std), number(s.best)] if s else ["", "", ""]
        it, wall = group.iterations(), group.wall_time()
        row += [number(it.mean) if it else "", number(wall.mean) if wall else "", number(wall.std) if wall else ""]
        writer.writerow(row)
    return out.getvalue().rstrip("\n")


def json_report(groups: Sequence[Group], columns: Sequence[str], apart: Sequence[Apart]) -> dict:
    """Every group with its settings, statistics and member runs (path, seed, figures); the runs
    listed apart with their reasons."""
    metrics = shown_metrics(groups)

    def figures(s: Stat | None) -> dict | None:
        return None if s is None else {"mean": s.mean, "std": s.std, "best": s.best, "n": s.n}

    return {
        "columns": list(columns),
        "groups": [{
            "settings": group.settings,
            "dataset": group.dataset,
            "eval_samples": group.eval_samples,
            "seeds": len(group.runs),
            "stats": {m.name: figures(group.stats(m)) for m in metrics}
                     | {"iterations_run": figures(group.iterations()), "wall_time_s": figures(group.wall_time())},
            "runs": [{"path": str(r.path), "seed": r.seed, "iteration": r.iteration, "wall_time_s": r.wall_time_s}
                     | {m.name: r.value(m) for m in metrics} for r in group.runs],
        } for group in groups],
        "apart": [{"path": str(a.path), "reason": a.reason} for a in apart],
    }


def shown_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
