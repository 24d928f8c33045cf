"""Start-up: what a command costs before (and besides) its work.

Medians of several runs, each in a fresh interpreter, with the load average beside them:

* ``python -c pass`` (the interpreter alone) and ``import csv2sr.cli`` (the command line);
* ``csv2sr --help`` and ``csv2sr convert --help`` (issue 16's target: under 0.2 s);
* ``csv2sr convert`` of a one-row CSV into a new folder, and again into the same folder
  (a make rule per file: issue 16's target 0.8 s), with the default workers and with
  ``--jobs 1``, and ``import csv2sr.conversion.batch`` (what the conversion imports);
* the same with the ``--cache`` of an earlier conversion of the sample (its templates):
  one changed row into that run's folder (a rerun), and one row into a new folder.

Writes benchmarks/results/startup.txt.  Usage::

    python benchmarks/bench_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import Run, compile_package, load, median_run, record

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "ccc2017-sample.csv"
RESULTS = ROOT / "benchmarks" / "results" / "startup.txt"


def _line(label: str, best: Run, runs: list[Run]) -> str:
    spread = f"{min(r.seconds for r in runs):.3f}-{max(r.seconds for r in runs):.3f}"
    return (f"  {label:<58} {best.seconds:6.3f} s  (runs {spread} s, CPU {best.cpu_seconds:.3f} s, "
            f"{best.memory}, {best.load})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    compile_package()
    python = sys.executable
    csv2sr = [python, "-m", "csv2sr"]
    lines = [f"start-up, median of {args.repeat} runs each, {os.cpu_count()} CPUs, "
             f"Python {platform.python_version()}, load average before {load():.2f}"]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        one_row = Path(tmp) / "one-row.csv"
        one_row.write_text("".join(SAMPLE.read_text().splitlines(keepends=True)[:2]))
        out = Path(tmp) / "out"
        earlier, cache, pristine = (Path(tmp) / "earlier", Path(tmp) / "earlier" / "c.json",
                                    Path(tmp) / "pristine.json")
        subprocess.run([*csv2sr, "convert", str(SAMPLE), "-o", str(earlier), "--quiet",
                        "--cache", str(cache)], check=True)
        shutil.copyfile(cache, pristine)
        header, *rows = SAMPLE.read_text().splitlines(keepends=True)
        cells = rows[3].split(",")
        cells[header.split(",").index("length")] = "17.25"
        changed = Path(tmp) / "one-changed.csv"
        changed.write_text(header + ",".join(cells))

        def again() -> None:
            shutil.copyfile(pristine, cache)

        def fresh() -> None:
            shutil.rmtree(out, ignore_errors=True)

        def fresh_again() -> None:
            fresh()
            again()

        cases: list[tuple[str, list[str], Callable[[], None] | None]] = [
            ("python -c pass", [python, "-c", "pass"], None),
            ("import csv2sr.cli", [python, "-c", "import csv2sr.cli"], None),
            ("csv2sr --help", [*csv2sr, "--help"], None),
            ("csv2sr convert --help", [*csv2sr, "convert", "--help"], None),
            ("import csv2sr.conversion.batch", [python, "-c", "import csv2sr.conversion.batch"],
             None),
            ("convert one row, new folder", [*csv2sr, "convert", str(one_row), "-o", str(out),
                                             "--quiet"], fresh),
            ("convert one row, same folder again",
             [*csv2sr, "convert", str(one_row), "-o", str(out), "--quiet"], None),
            ("convert one row, new folder, --jobs 1",
             [*csv2sr, "convert", str(one_row), "-o", str(out), "--quiet", "--jobs", "1"],
             fresh),
            ("convert one changed row, earlier run's folder and --cache",
             [*csv2sr, "convert", str(changed), "-o", str(earlier), "--quiet",
              "--cache", str(cache)], again),
            ("convert one row, new folder, earlier run's --cache",
             [*csv2sr, "convert", str(one_row), "-o", str(out), "--quiet",
              "--cache", str(cache)], fresh_again),
        ]
        for label, command, prepare in cases:
            runs = []
            for _ in range(args.repeat):
                if prepare is not None:
                    prepare()
                _, [single] = median_run(command, 1)
                runs.append(single)
            ordered = sorted(runs, key=lambda r: r.seconds)
            lines.append(_line(label, ordered[len(ordered) // 2], runs))
            print(lines[-1], flush=True)
            record(label, ordered[len(ordered) // 2], runs=len(runs))
    lines.append(f"load average after {load():.2f}")
    print(lines[-1])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
