"""The command line of ``python -m gan.compare``: the arguments, checked before any work (a wrong
one is one ``error:`` line and the usage, status 2), the comparison they ask for, and the one-line
refusal of paths that give nothing to compare (status 1)."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gan.compare.groups import SORT_EXTRAS, describe, group_runs, sort_groups
from gan.compare.plot import plot_fid
from gan.compare.runs import METRICS, NothingToCompare, collect
from gan.compare.tables import csv_text, json_report, markdown, shown_path
from gan.runtime.cli import UsageError, run_tool, writable_output

FORMATS = ("markdown", "csv", "json")
USAGE = ("usage: python -m gan.compare PATH... [--format markdown|csv|json] [--sort METRIC] [--plot FID.png]\n"
         "  PATH: run folders, sweep folders, outputs/, or globs of them")


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="python -m gan.compare", usage=USAGE.removeprefix("usage: "),
                     description="Compare runs across seeds and sweeps (README, 'Compare runs').")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="run folders, sweep folders, outputs/, or globs")
    parser.add_argument("--format", default="markdown", help="markdown (default), csv or json")
    parser.add_argument("--sort", default=None, metavar="METRIC",
                        help=f"best first: {', '.join([m.name for m in METRICS] + list(SORT_EXTRAS))}")
    parser.add_argument("--plot", default=None, metavar="FID.png", help="FID against iterations for each group")
    args = parser.parse_args(list(argv))
    if args.format not in FORMATS:
        raise UsageError(f"--format {args.format}: use one of {', '.join(FORMATS)}")
    if args.sort is not None:
        args.sort = sort_choice(args.sort)
    if args.plot is not None:
        args.plot = plot_path(args.plot)
    return args


def sort_choice(value: str) -> str:
    """``--sort``'s name as :data:`METRICS` and :data:`SORT_EXTRAS` spell it (``FID``, ``val/fid`` and
    ``label accuracy`` are taken too); an unknown one is refused with the nearest known one."""
    known = [m.name for m in METRICS] + list(SORT_EXTRAS)
    name = value.strip().lower().replace(" ", "_").removeprefix("val/")
    if name in known:
        return name
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"did you mean --sort {near[0]}?" if near else f"use one of {', '.join(known)}"
    raise UsageError(f"--sort {value}: no such metric; {hint}")


def plot_path(value: str) -> Path:
    """``--plot``'s file, checked before any work (a .png that can be written there)."""
    return writable_output("--plot", value, (".png",))


def compare(args: argparse.Namespace) -> str:
    """The table (or CSV, or JSON) for ``args``; writes the plot when asked."""
    runs, apart = collect(args.paths)
    if not runs:
        listing = "; ".join(f"{shown_path(a.path)}: {a.reason}" for a in apart[:3]) + ("; ..." if len(apart) > 3 else "")
        raise NothingToCompare(f"none of the {len(apart)} runs found is a finished result ({listing})")
    groups = group_runs(runs)
    columns = describe(groups)
    groups = sort_groups(groups, columns, args.sort)
    if args.plot is not None:
        plot_fid(groups, args.plot)
    if args.format == "json":
        return json.dumps(json_report(groups, columns, apart), indent=2)
    if args.format == "csv":
        for a in apart:
            print(f"listed apart: {shown_path(a.path)}: {a.reason}", file=sys.stderr)
        return csv_text(groups, columns)
    return markdown(groups, columns, apart)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(list(sys.argv[1:] if argv is None else argv), parse, show, USAGE, (NothingToCompare, OSError))


def show(args: argparse.Namespace) -> None:
    """Print the comparison ``args`` asks for (and say where the plot went)."""
    text = compare(args)
    try:
        print(text)
    except BrokenPipeError:  # the reader stopped early (| head): not an error of the comparison
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python flushes stdout at exit)
    if args.plot is not None:
        print(f"wrote {args.plot}", file=sys.stderr)
