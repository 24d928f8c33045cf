"""What every benchmark measures the same way: wall and CPU time, memory of the whole
process tree, the machine's load.  Not a benchmark itself (``make bench`` runs
``bench_*.py``); imported by them.

* **memory**: the peak of the *sum* of the resident memory (VmRSS) of a command and every
  process under it (workers, dciodvfy, the JVM), sampled from ``/proc`` every 10 ms, and
  the largest single process.  A worker forked from its parent shares pages with it, which
  the sum counts twice, so the sum is an upper bound of what the tree needed.
* **CPU**: user + system seconds of the command and all its descendants
  (``getrusage(RUSAGE_CHILDREN)``).  A process its parent never waits for (the
  multiprocessing fork server and its workers, left to exit after the main process) would
  be missed: this process makes itself their *subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``),
  so they become its children, and waits for them too.
* **load**: the 1-minute load average before and after, printed beside each figure: this
  machine is shared, and a figure measured at load 4 on 2 cores is not one measured idle.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FIGURES", "Run", "index_seconds", "load", "median_run", "record", "run"]

_PROC = Path("/proc")


@dataclass
class Run:
    """One command's figures."""

    seconds: float
    cpu_seconds: float
    returncode: int
    stdout: str
    stderr: str
    tree_peak_mib: float
    """Peak of the summed VmRSS of the process and all its descendants (sampled)."""
    largest_mib: float
    """Peak VmRSS of the largest single process of the tree (sampled)."""
    load_before: float
    load_after: float

    @property
    def memory(self) -> str:
        return f"tree peak {self.tree_peak_mib:.0f} MiB (largest process {self.largest_mib:.0f})"

    @property
    def load(self) -> str:
        return f"load {self.load_before:.2f}->{self.load_after:.2f}"


_INDEX = """
import sys, tempfile, time
from pathlib import Path
from csv2sr.images.index import ImageIndex
with tempfile.TemporaryDirectory() as out:
    t = time.perf_counter()
    n = len(ImageIndex.from_folder(Path(sys.argv[1]), cache_in=Path(out)))
    print(n, time.perf_counter() - t)
"""


def index_seconds(folder: Path) -> tuple[int, float]:
    """(headers, seconds) to build the index of the image folder ``folder`` as a first
    ``convert --images`` does: every header read, then the index kept in OUTDIR/cache/
    (here a new temporary folder), in a process of its own, imports excluded."""
    done = subprocess.run([sys.executable, "-c", _INDEX, str(folder)], check=True,
                          capture_output=True, text=True)
    count, seconds = done.stdout.split()
    return int(count), float(seconds)


def compile_package() -> None:
    """csv2sr's modules compiled once, as `make`'s setup does (``$(VENV)/.compiled``): with
    PYTHONDONTWRITEBYTECODE set, every process would otherwise compile them again."""
    package = Path(__file__).resolve().parent.parent / "src" / "csv2sr"
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(package)],
                   check=True)


def load() -> float:
    """The 1-minute load average (0 where the system has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def _rss_mib(pid: int) -> float:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


class _TreeSampler(threading.Thread):
    """Sums the resident memory of ``pid`` and its descendants every ``interval`` s."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self.largest = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        if not _PROC.joinpath("self", "status").exists():
            return
        while not self.done.is_set():
            pending, sizes = [self.pid], []
            while pending:
                pid = pending.pop()
                sizes.append(_rss_mib(pid))
                pending.extend(_children(pid))
            self.peak = max(self.peak, sum(sizes))
            self.largest = max(self.largest, *sizes)
            self.done.wait(self.interval)


def _become_subreaper() -> None:
    """Orphans of the command (a fork server outliving its parent) are re-parented to this
    process instead of init, so that their CPU time is counted when they are waited for."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_orphans(timeout: float = 30.0) -> None:
    """Wait for every child left (orphans re-parented here), up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_become_subreaper()


def run(command: Sequence[str], *, cwd: Path | None = None,
        env: dict[str, str] | None = None, check: bool = True) -> Run:
    """Run ``command`` (output captured) and measure it; a failure raises unless
    ``check`` is False."""
    before_load, before_cpu = load(), _cpu()
    started = time.perf_counter()
    process = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    sampler = _TreeSampler(process.pid)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    _reap_orphans()
    result = Run(seconds, _cpu() - before_cpu, process.returncode, stdout, stderr,
                 sampler.peak, sampler.largest, before_load, load())
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: exit status {process.returncode}\n"
                           f"{stdout[-2000:]}\n{stderr[-2000:]}")
    return result


def median_run(command: Sequence[str], repeat: int, **kwargs: object) -> tuple[Run, list[Run]]:
    """``command`` run ``repeat`` times: the run of median wall time, and all of them."""
    runs = [run(command, **kwargs) for _ in range(repeat)]  # type: ignore[arg-type]
    middle = statistics.median_low(r.seconds for r in runs)
    return next(r for r in runs if r.seconds == middle), runs


FIGURES = Path(__file__).resolve().parent / "results" / "figures.json"
"""The figures of issue 16's table, by label, each with its load average: what
``benchmarks/table.py`` prints at the end of ``make bench``."""


def _figure(value: Run) -> dict[str, float]:
    return {"seconds": round(value.seconds, 3), "cpu_seconds": round(value.cpu_seconds, 3),
            "tree_peak_mib": round(value.tree_peak_mib, 1),
            "largest_mib": round(value.largest_mib, 1),
            "load_before": round(value.load_before, 2), "load_after": round(value.load_after, 2)}


def record(label: str, value: Run | list[tuple[str, Run]], **extra: object) -> None:
    """Keep ``value`` (one run, or the stages of one) under ``label`` in :data:`FIGURES`."""
    import json  # noqa: PLC0415

    figures = json.loads(FIGURES.read_text()) if FIGURES.is_file() else {}
    if isinstance(value, Run):
        entry: dict[str, object] = _figure(value)
    else:
        runs = [r for _, r in value]
        entry = {"seconds": round(sum(r.seconds for r in runs), 3),
                 "cpu_seconds": round(sum(r.cpu_seconds for r in runs), 3),
                 "tree_peak_mib": round(max(r.tree_peak_mib for r in runs), 1),
                 "load_before": round(runs[0].load_before, 2),
                 "load_after": round(runs[-1].load_after, 2),
                 "stages": {name: _figure(r) for name, r in value}}
    entry.update(extra)
    figures[label] = entry
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
