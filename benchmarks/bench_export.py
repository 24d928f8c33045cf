"""Benchmark ``csv2sr export``: files/s and peak memory on the 2,345 converted real SRs.

    python benchmarks/bench_export.py [SR_DIR]

Without SR_DIR the real CSV (../shared/data/ccc2017/) is converted first into a temporary
folder (not timed).  Each configuration runs in a fresh Python process, so that its peak
resident memory is its own: the exporting process by ``resource.getrusage``, the largest
worker process by sampling /proc four times a second.  The ``x4`` run exports every file
four times (9,380 files) to show that memory stays flat as the number of files grows.
Results are printed and written to ``benchmarks/results/export.txt``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL_CSV = ROOT.parent / "shared" / "data" / "ccc2017" / "CrowdsCureCancer2017Annotations.csv"
RESULTS = ROOT / "benchmarks" / "results" / "export.txt"

CONFIGS = (
    # (label, jobs, repeat, format, profile)
    ("ccc2017 csv, 1 process", 1, 1, "csv", "ccc2017"),
    ("ccc2017 csv, 2 processes", 2, 1, "csv", "ccc2017"),
    ("ccc2017 csv, 2 processes, x4 files", 2, 4, "csv", "ccc2017"),
    ("generic parquet, 2 processes", 2, 1, "parquet", "generic"),
)


def _descendants(root: int) -> list[int]:
    """Processes below ``root`` (pool workers are grandchildren, via the forkserver)."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent_of[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parent_of.items() if p == pid]
        found.extend(children)
        frontier.extend(children)
    return found


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _WorkerMemory(threading.Thread):
    """Samples the resident memory of every descendant process (Linux /proc) 4 times/s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_one = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        if not Path("/proc/self/status").exists():
            return
        while not self.stop.wait(0.25):
            sizes = [_rss_mb(pid) for pid in _descendants(os.getpid())]
            self.peak_one = max([self.peak_one, *sizes])


def _run_child(sr_dir: str, jobs: int, repeat: int, fmt: str, profile: str) -> None:
    """One export in this process; print its numbers as JSON."""
    from csv2sr.export import write_table  # noqa: PLC0415
    from csv2sr.inputs import input_files  # noqa: PLC0415

    sampler = _WorkerMemory()
    with tempfile.TemporaryDirectory() as tmp:
        originals = list(input_files([sr_dir]))
        folders = [Path(sr_dir)]
        for copy in range(1, repeat):  # more files: hard links under other names
            folder = Path(tmp, f"copy{copy}")
            folder.mkdir()
            for number, path in enumerate(originals):
                os.link(path, folder / f"{number:06d}.dcm")
            folders.append(folder)
        sampler.start()
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = write_table(folders, Path(tmp) / f"t.{fmt}", format=fmt, profile=profile,
                             jobs=jobs)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    sampler.stop.set()
    sampler.join()
    print(json.dumps({
        "files": result.files, "rows": result.rows, "errors": len(result.errors),
        "seconds": seconds,
        "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_worker_mb": sampler.peak_one,
    }))


def _sr_dir(argv: list[str], tmp: str) -> str:
    if argv:
        return argv[0]
    from csv2sr.conversion.batch import convert  # noqa: PLC0415

    out = Path(tmp) / "converted"
    started = time.perf_counter()
    result = convert(REAL_CSV, out, jobs=2)
    print(f"converted {result.converted} rows in {time.perf_counter() - started:.1f} s "
          "(not part of the export numbers)")
    return str(out / "sr")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        _run_child(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5])
        return
    lines = [
        f"csv2sr export benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared), load average {os.getloadavg()[0]:.1f}",
        f"{'configuration':38} {'files':>6} {'rows':>6} {'s':>6} {'files/s':>8} "
        f"{'CPU ms/file':>12} {'main MB':>8} {'worker MB':>9}",
    ]
    print(lines[0])
    with tempfile.TemporaryDirectory() as tmp:
        sr_dir = _sr_dir(argv, tmp)
        print(lines[1])
        for label, jobs, repeat, fmt, profile in CONFIGS:
            done = subprocess.run(
                [sys.executable, __file__, "--child", sr_dir, str(jobs), str(repeat), fmt,
                 profile], capture_output=True, text=True, check=True,
            )
            n = json.loads(done.stdout.strip().splitlines()[-1])
            worker = f"{n['rss_worker_mb']:>9.0f}" if jobs > 1 else f"{'-':>9}"
            # CPU per file is the load-independent cost; known for the 1-process run only
            cpu = (f"{n['cpu_seconds'] / n['files'] * 1000:>12.1f}" if jobs == 1
                   else f"{'-':>12}")
            line = (f"{label:38} {n['files']:>6} {n['rows']:>6} {n['seconds']:>6.1f} "
                    f"{n['files'] / n['seconds']:>8.0f} {cpu} {n['rss_main_mb']:>8.0f} "
                    f"{worker}")
            if n["errors"]:
                line += f"  ({n['errors']} errors!)"
            print(line, flush=True)
            lines.append(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp_results = RESULTS.with_name(f".{RESULTS.name}.tmp")
    tmp_results.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp_results, RESULTS)
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
