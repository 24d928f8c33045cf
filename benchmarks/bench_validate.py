"""Benchmark ``csv2sr validate``: files/s and peak memory on the 2,345 converted real SRs.

    python benchmarks/bench_validate.py [SR_DIR] [--jobs N]

Without SR_DIR the real CSV (../shared/data/ccc2017/) is converted first into a temporary
folder (not timed).  Three measurements, each through the command line in a fresh process
(so that ``resource.getrusage(RUSAGE_CHILDREN)`` gives that run's peak memory):

1. own checks alone (``--no-dciodvfy``), N jobs;
2. own checks + dciodvfy, N jobs (the release gate; target: 2,345 files in < 30 s on 2 cores);
3. own checks in one process, CPU ms per file (``time.process_time``, no pool);
4. dciodvfy one file at a time, CPU ms per file (its process plus the spawn), and from 3
   and 4 the CPU-bound time of the whole run on two idle cores: a load-free figure.

The machine's load average is printed too: on a shared machine it explains slow runs.
Results are printed and written to ``benchmarks/results/validate.txt``.
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

from csv2sr.conversion.batch import convert
from csv2sr.tools import find_dciodvfy
from csv2sr.validate.checks import check_file
from csv2sr.validate.dciodvfy import run_dciodvfy

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "validate.txt"

_PROBE = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def convert_real(folder: Path) -> Path:
    result = convert(REAL, folder)
    if result.converted != 2345:
        raise SystemExit(f"expected 2,345 converted rows, got {result.converted}")
    return folder / "sr"


def run_cli(sr_dir: Path, *extra: str) -> tuple[float, int, float]:
    """(seconds, exit code, peak RSS MiB of the largest process of the run)."""
    command = [sys.executable, "-m", "csv2sr", "validate", str(sr_dir), "--quiet",
               "--format", "json", *extra]
    started = time.perf_counter()
    probe = subprocess.run([sys.executable, "-c", _PROBE, *command], check=True,
                           capture_output=True, text=True)
    seconds = time.perf_counter() - started
    code, rss_kib = probe.stdout.split()
    return seconds, int(code), int(rss_kib) / 1024


def own_cpu_ms(sr_dir: Path, limit: int = 500) -> float:
    """CPU milliseconds per file of the own checks in this process (no pool)."""
    files = sorted(sr_dir.rglob("*.dcm"))[:limit]
    started = time.process_time()
    for path in files:
        check_file(path)
    return (time.process_time() - started) / len(files) * 1000


def dciodvfy_cpu_ms(sr_dir: Path, limit: int = 200) -> float:
    """CPU milliseconds per file of dciodvfy runs (child CPU plus this process's spawn cost)."""
    binary = find_dciodvfy()
    if binary is None:
        return float("nan")
    files = sorted(sr_dir.rglob("*.dcm"))[:limit]
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    for path in files:
        run_dciodvfy(binary, path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (children + time.process_time() - started) / len(files) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sr_dir", nargs="?", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        sr_dir = args.sr_dir or convert_real(Path(tmp))
        files = sum(1 for _ in sr_dir.rglob("*.dcm"))
        jobs = str(args.jobs)
        rows = []
        for label, extra in (("own checks", ("--no-dciodvfy",)),
                             ("own checks + dciodvfy", ())):
            seconds, code, rss = run_cli(sr_dir, "--jobs", jobs, *extra)
            rows.append(f"{label:24} jobs={jobs}  {files} files  {seconds:6.1f} s  "
                        f"{files / seconds:7.1f} files/s  peak RSS {rss:6.1f} MiB  exit {code}")
        cpu = own_cpu_ms(sr_dir)
        tool = dciodvfy_cpu_ms(sr_dir)
    estimate = files * (cpu + tool) / 1000 / 2
    lines = [
        f"csv2sr validate benchmark ({platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())})",
        *rows,
        f"{'own checks, 1 process':24} {cpu:.2f} ms CPU per file (first 500 files)",
        f"{'dciodvfy, 1 at a time':24} {tool:.2f} ms CPU per file, its process and the "
        "spawn (first 200 files)",
        f"{'CPU-bound estimate':24} {files} files x {cpu + tool:.1f} ms / 2 cores = "
        f"{estimate:.1f} s on 2 idle cores (own checks + dciodvfy)",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
