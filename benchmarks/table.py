"""Issue 16's table from the figures the benchmarks recorded (benchmarks/results/figures.json),
each with the load average it was measured at; ``make bench`` prints it last.

    python benchmarks/table.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import FIGURES

ROWS = (
    # (what, label in figures.json, target)
    ("csv2sr --help", "csv2sr --help", "under 0.2 s"),
    ("csv2sr convert of a one-row CSV", "convert one row, new folder", "under 0.8 s"),
    ("csv2sr convert of the real CSV (2,345 rows), end to end",
     "convert real CSV (2,345 rows), template", "1,000 SR/s or more (under 2.4 s)"),
    ("csv2sr convert of 20,000 rows (steady state)", "convert synthetic (20,000 rows), template",
     "no lower than before (1,650+ SR/s)"),
    ("make release on the real CSV", "make release (real CSV), clean", "under 20 s"),
    ("make release after one row changed", "make release (real CSV), rerun after one row changed",
     "under 10 s"),
    ("make test", "make test", "under 4 min"),
)


def _cell(figure: dict[str, Any]) -> str:
    text = f"{figure['seconds']:.2f} s"
    if "rate" in figure:
        text += f", {figure['rate']:.0f} SR/s"
    if "stages" in figure:
        text += " (" + ", ".join(f"{name} {stage['seconds']:.1f}"
                                 for name, stage in figure["stages"].items()) + ")"
    if "tests" in figure:
        text += f", {figure['tests']}"
    return text


def main() -> int:
    figures = json.loads(FIGURES.read_text()) if FIGURES.is_file() else {}
    print(f"issue 16's figures (benchmarks/results/{FIGURES.name}), {os.cpu_count()} CPUs; "
          "load = 1-minute load average before -> after")
    for what, label, target in ROWS:
        figure = figures.get(label)
        if figure is None:
            print(f"  {what}: not measured (target {target})")
            continue
        memory = f", tree peak {figure['tree_peak_mib']:.0f} MiB" if figure.get(
            "tree_peak_mib") else ""
        print(f"  {what}: {_cell(figure)}{memory}; target {target}; load "
              f"{figure['load_before']:.2f} -> {figure['load_after']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
