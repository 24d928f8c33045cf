"""`make release` on the real CCC2017 CSV: a clean build, then a rerun after one row changed.

Each stage is its own make target, run in order (`convert`, `validate`, `dumps`, `export`,
`report`, `check`, `zip`): per stage the wall time, the CPU time of the stage and all its
processes, and the peak memory of its whole process tree (measure.py), with the load
average.  The rerun changes the `length` of one row of a copy of the CSV (the other rows
keep their bytes) and runs the same targets again: the work proportional to the change.
Writes benchmarks/results/release.txt and the figures of benchmarks/results/figures.json.
Usage::

    python benchmarks/bench_release.py [--csv PATH] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import Run, compile_package, load, record, run

ROOT = Path(__file__).resolve().parent.parent
REAL_CSV = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "release.txt"
TARGETS = ("convert", "validate", "dumps", "export", "report", "check", "zip")


def _rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


def _change_one_row(path: Path) -> str:
    """Add 1 to the `length` of the 100th row, in place, every other byte kept."""
    lines = path.read_bytes().split(b"\n")
    header = lines[0].rstrip(b"\r").split(b",")
    cells = lines[100].split(b",")
    column = header.index(b"length")
    before = cells[column]
    cells[column] = f"{float(before) + 1:.8f}".encode()
    lines[100] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))
    return f"row 100: length {before.decode()} -> {cells[column].decode()}"


def _build(csv_path: Path, out: Path, dist: Path, jobs: int | None) -> list[tuple[str, Run]]:
    make = ["make", "-C", str(ROOT), f"PYTHON={sys.executable}", f"CSV={csv_path}",
            f"OUT={out}", f"DIST={dist}", *([f"JOBS={jobs}"] if jobs else [])]
    return [(target, run([*make, target])) for target in TARGETS]


def _report(title: str, stages: list[tuple[str, Run]], rows: int) -> list[str]:
    wall = sum(r.seconds for _, r in stages)
    cpu = sum(r.cpu_seconds for _, r in stages)
    peak = max(r.tree_peak_mib for _, r in stages)
    lines = [f"{title}: {wall:.1f} s wall, {cpu:.1f} s CPU ({rows / wall:.0f} rows/s end to "
             f"end), tree peak {peak:.0f} MiB, load {stages[0][1].load_before:.2f}->"
             f"{stages[-1][1].load_after:.2f}"]
    lines.extend(f"  {name:<9} {r.seconds:6.1f} s wall {r.cpu_seconds:6.1f} s CPU  {r.memory}, "
                 f"{r.load}" for name, r in stages)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=REAL_CSV)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    if not args.csv.is_file():
        print(f"skipped: {args.csv} is not there")
        return 0
    compile_package()
    rows = _rows(args.csv)
    lines = [f"make release, {args.csv.name}, {rows} rows, jobs={args.jobs or os.cpu_count()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average before "
             f"{load():.2f}"]
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        csv_path = Path(tmp) / args.csv.name  # a copy: the rerun changes one row of it
        shutil.copyfile(args.csv, csv_path)
        out, dist = Path(tmp) / "out", Path(tmp) / "dist"
        clean = _build(csv_path, out, dist, args.jobs)
        lines += _report("clean build", clean, rows)
        print("\n".join(lines), flush=True)
        zips = list(dist.glob("*.zip"))
        lines.append(f"zip: {zips[0].stat().st_size / 1e6:.1f} MB" if zips else "zip: none")
        change = _change_one_row(csv_path)
        rerun = _build(csv_path, out, dist, args.jobs)
        lines += _report(f"rerun after one row changed ({change})", rerun, rows)
    lines.append(f"load average after {load():.2f}")
    print("\n".join(lines[len(lines) - len(rerun) - 3:]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    record("make release (real CSV), clean", clean)
    record("make release (real CSV), rerun after one row changed", rerun)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
