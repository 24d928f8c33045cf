"""Wall time of `make release` on the real CCC2017 CSV, from clean, into a temporary folder.

Prints the total and per-stage wall times (the Makefile's OUT/stages/*.status), SR/s and
the peak resident memory of the largest child process, and writes them to
benchmarks/results/release.txt.  Usage::

    python benchmarks/bench_release.py [--csv PATH] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL_CSV = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "release.txt"


def _rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=REAL_CSV)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    if not args.csv.is_file():
        print(f"skipped: {args.csv} is not there")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        out, dist = Path(tmp) / "out", Path(tmp) / "dist"
        command = ["make", "-C", str(ROOT), "release", f"PYTHON={sys.executable}",
                   f"CSV={args.csv.resolve()}", f"OUT={out}", f"DIST={dist}"]
        if args.jobs:
            command.append(f"JOBS={args.jobs}")
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
            return 1
        stages = {p.stem: p.read_text().split() for p in sorted((out / "stages").glob("*.status"))}
        zips = list(dist.glob("*.zip"))
        zip_size = zips[0].stat().st_size if zips else 0
    rows = _rows(args.csv)
    rest = seconds - sum(int(ms) for _, ms in stages.values()) / 1000
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = [
        f"make release, {args.csv.name}, {rows} rows, jobs={args.jobs or os.cpu_count()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"total wall time: {seconds:.1f} s ({rows / seconds:.1f} rows/s end to end)",
        *(f"  {name:<9} {int(ms) / 1000:7.1f} s  exit {status}"
          for name, (status, ms) in stages.items()),
        f"  the rest {rest:7.1f} s  (report, check, zip, make and interpreter start-up)",
        f"zip: {zip_size / 1e6:.1f} MB",
        f"peak RSS of the largest child process: {peak_mb:.0f} MB",
    ]
    print("\n".join(lines))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
