"""Conversion throughput and peak memory, end to end through the command line.

Converts the real CCC2017 CSV (2,345 rows) and a synthetic 20,000-row CSV in the same
format (the real rows repeated with new `order`, `_id` and shifted coordinates), each in
its own process, both with the default (template) path and with highdicom for every row
(`--reference-builder`, real CSV only), and the real CSV with `--ohif` (the OHIF Tracking
Identifiers, same template path); then a generated 20,000-row table of every test profile
(tests/data/profiles/*.toml, made by tests/profilegen.py, seeded).  Prints SR/s, the CPU
time and the peak memory of the whole process tree (the converting process and its
workers, summed: measure.py) with the load average, and how fast the table alone is read and checked
(`csv2sr.conversion.checks.read_rows`); writes the table to benchmarks/results/convert.txt.

    python benchmarks/bench_convert.py            (or: make bench)
"""

from __future__ import annotations

import csv
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import Run, record
from measure import run as measure

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "convert.txt"


def synthetic(path: Path, rows: int) -> None:
    """`rows` rows in the CCC2017 format, made from the real ones (unique order and _id)."""
    with REAL.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        real = list(reader)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fields, lineterminator="\r\n")
        writer.writeheader()
        for n in range(rows):
            row = dict(real[n % len(real)])
            row["order"] = str(n + 1)
            row["_id"] = f"{n:032x}"
            row["start_x"] = f"{float(row['start_x']) + (n // len(real)) * 0.25:.7f}"
            writer.writerow(row)


def profile_tables(folder: Path, rows: int) -> list[tuple[str, Path, Path]]:
    """(name, table, profile file) of every test profile, ``rows`` generated rows each."""
    sys.path.insert(0, str(ROOT / "tests"))
    from profilegen import (  # noqa: PLC0415  (the tests' seeded generator)
        TEST_PROFILES,
        generate_rows,
        profile_path,
        test_profile,
        write_table,
    )

    found = []
    for name in TEST_PROFILES:
        spec = test_profile(name)
        suffix = ".tsv" if spec.input.delimiter == "\t" else ".csv"
        table = write_table(folder / f"{name}{suffix}", spec, generate_rows(spec, rows, seed=1))
        found.append((name, table, profile_path(name)))
    return found


def run(csv_path: Path, *extra: str) -> tuple[int, Run]:
    """(rows, the measured run: wall and CPU time, peak memory of the whole process tree:
    the converting process and its workers, measure.py)."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "csv2sr", "convert", str(csv_path), "-o", out,
                   "--quiet", *extra]
        measured = measure(command)
        rows = sum(1 for _ in Path(out, "sr").rglob("*.dcm"))
    return rows, measured


_READ = (
    "import sys, time; from pathlib import Path; from csv2sr.mapping.load import load_profile; "
    "from csv2sr.conversion.checks import read_rows; profile = load_profile('ccc2017'); "
    "t = time.perf_counter(); n = sum(1 for _ in read_rows(Path(sys.argv[1]), profile)); "
    "print(n, time.perf_counter() - t)"
)


def read_only(csv_path: Path) -> tuple[int, float]:
    """(rows, seconds) to read and check every row (csv2sr.conversion.checks.read_rows),
    imports excluded."""
    done = subprocess.run([sys.executable, "-c", _READ, str(csv_path)], check=True,
                          capture_output=True, text=True)
    rows, seconds = done.stdout.split()
    return int(rows), float(seconds)


def main() -> None:
    if not REAL.is_file():
        sys.exit(f"the real CSV is not at {REAL}")
    lines = [
        f"csv2sr convert, end to end (process start, imports, files written); "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"{'input':<34}{'builder':<12}{'rows':>7}{'seconds':>9}{'SR/s':>8}{'CPU s':>8}"
        f"{'tree MiB':>10}{'largest':>9}  load",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "synthetic-20000.csv"
        synthetic(big, 20_000)
        cases = [
            ("real CSV (2,345 rows)", REAL, "template", ()),
            ("synthetic (20,000 rows)", big, "template", ()),
            ("real CSV (2,345 rows)", REAL, "highdicom", ("--reference-builder",)),
            ("real CSV (2,345 rows) --ohif", REAL, "template", ("--ohif",)),
        ]
        for label, path, builder, extra in cases:
            rows, measured = run(path, *extra)
            seconds = measured.seconds
            line = (f"{label:<34}{builder:<12}{rows:>7}{seconds:>9.1f}{rows / seconds:>8.0f}"
                    f"{measured.cpu_seconds:>8.1f}{measured.tree_peak_mib:>10.0f}"
                    f"{measured.largest_mib:>9.0f}  {measured.load}")
            print(line, flush=True)
            lines.append(line)
            record(f"convert {label}, {builder}", measured, rows=rows,
                   rate=round(rows / seconds, 1))
        lines.append(f"{'profile (generated 20,000 rows)':<34}{'rows':>7}{'SRs':>7}"
                     f"{'seconds':>9}{'rows/s':>8}{'SR/s':>8}{'tree MiB':>10}  load")
        for name, table, profile in profile_tables(Path(tmp), 20_000):
            files, measured = run(table, "--profile", str(profile))
            seconds = measured.seconds
            line = (f"{name:<34}{20_000:>7}{files:>7}{seconds:>9.1f}{20_000 / seconds:>8.0f}"
                    f"{files / seconds:>8.0f}{measured.tree_peak_mib:>10.0f}  {measured.load}")
            print(line, flush=True)
            lines.append(line)
            record(f"convert profile {name}", measured, rows=20_000, files=files,
                   rate=round(20_000 / seconds, 1))
        lines.append(f"{'reading and checking rows only':<46}{'rows':>7}{'seconds':>9}"
                     f"{'rows/s':>8}")
        for label, path in (("real CSV (2,345 rows)", REAL), ("synthetic (20,000 rows)", big)):
            rows, seconds = read_only(path)
            line = f"{label:<46}{rows:>7}{seconds:>9.2f}{rows / seconds:>8.0f}"
            print(line, flush=True)
            lines.append(line)
    print("\n".join(lines[:2]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
