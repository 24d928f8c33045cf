"""Ctrl-C and SIGTERM: real signals to a real ``csv2sr convert``, at seeded random moments.

A Ctrl-C goes to the whole process group (as a terminal sends it), a SIGTERM to the
process alone (``kill PID``) or to the group (a service manager), at a random moment
once csv2sr has taken the signals over (before that, in the first tenth of a second or so,
the interpreter is still starting and the system ends it silently).  Each run is then rerun,
with the same table or another one.  Promised (docs/reliability.md, Output): no
traceback, exit 130 (SIGINT) or 143 (SIGTERM) with a message, no manifest that claims a
file that is not there, every SR present complete, and after the rerun: no temporary file,
no lock, ``sr/`` exactly the manifest's converted rows.

``HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``) runs many more moments.
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest

from csv2sr.atomic import is_temporary
from csv2sr.conversion.batch import convert
from csv2sr.conversion.outputs import LOCK_NAME
from csv2sr.pools import stopping
from rowgen import synthetic_csv
from test_stale_output import assert_invariant

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
CASES = 40 if FUZZ else 6
SEED = 20261127
#: A command that hangs is aborted (SIGABRT) and faulthandler prints every thread's stack.
STACKS_ON_ABORT = {**os.environ, "PYTHONFAULTHANDLER": "1"}


def _ended(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """``proc``'s output once it has ended.  One still running two minutes after the
    signal is hung: the failure then shows where each of its threads stood."""
    try:
        return proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, stderr = proc.communicate(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its workers
        raise AssertionError(f"still running two minutes after the signal:\n{stderr[-8000:]}"
                             ) from None


def _cases() -> list[tuple[str, float, int, bool, bool]]:
    """(how the signal is sent, after how many seconds, jobs, reference builder, rerun
    with another table)."""
    chance = random.Random(SEED)
    kinds = ["ctrl-c", "sigterm", "sigterm-group"]
    return [
        (kinds[n % 3], round(chance.uniform(0.2, 6.0), 2), chance.choice([1, 2]),
         chance.random() < 0.5, chance.random() < 0.5)
        for n in range(CASES)
    ]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tables")
    return (synthetic_csv(folder / "a.csv", 500, patients=60, seed=1),
            synthetic_csv(folder / "b.csv", 80, patients=9, seed=2, first_order=300))


def _manifest_tells_the_truth(out: Path) -> None:
    """An interrupted run's manifest (if any is left) claims only files that exist."""
    manifest = out / "manifest.csv"
    if not manifest.exists():
        return
    with manifest.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["status"] == "converted":
                ds = pydicom.dcmread(out / row["path"], stop_before_pixels=True)
                assert ds.SOPInstanceUID == row["sop_instance_uid"]


@pytest.mark.property
@pytest.mark.parametrize(
    ("how", "delay", "jobs", "reference", "other"), _cases(),
    ids=[f"{c[0]}-{c[1]}s-j{c[2]}" for c in _cases()],
)
def test_a_signal_at_any_moment_then_a_rerun(
    tables: tuple[Path, Path], tmp_path: Path, how: str, delay: float, jobs: int,
    reference: bool, other: bool,
) -> None:
    first, second = tables
    out = tmp_path / "out"
    convert(second, out, jobs=1)  # an earlier, complete run into the same OUTDIR
    command = [sys.executable, "-m", "csv2sr", "convert", str(first), "-o", str(out),
               "--jobs", str(jobs), "--quiet"]
    if reference:
        command.append("--reference-builder")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=STACKS_ON_ABORT)
    _wait_until_caught(proc.pid)
    time.sleep(delay)
    sent = None
    if proc.poll() is None:
        sent = signal.SIGINT if how == "ctrl-c" else signal.SIGTERM
        if how == "sigterm":
            proc.send_signal(sent)
        else:
            os.killpg(proc.pid, sent)
    stdout, stderr = _ended(proc)
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    if proc.returncode < 0:
        # The signal came after the work, while the interpreter was ending (it has put the
        # system's handlers back): the system ended it; the run itself is complete.
        assert sent is not None and proc.returncode == -sent, stderr
        assert_invariant(out)
    elif proc.returncode != 0:
        assert sent is not None, stderr
        assert proc.returncode == 128 + sent, stderr
        assert f"interrupted by {sent.name}" in stderr
        assert all(line.strip() for line in stderr.splitlines()), "no stray output"
    for path in (out / "sr").rglob("*.dcm"):  # every SR in place is complete
        ds = pydicom.dcmread(path)
        assert ds.ContentSequence[-1].ValueType == "CONTAINER"
    _manifest_tells_the_truth(out)

    rerun = convert(second if other else first, out, jobs=1)
    assert rerun.rejected == 0
    assert_invariant(out)
    assert not (out / LOCK_NAME).exists()
    assert not [p for p in out.rglob("*") if is_temporary(p.name)]


def test_workers_ignore_ctrl_c_from_birth(tables: tuple[Path, Path], tmp_path: Path) -> None:
    """The pool is started with SIGINT ignored, so no worker can print a traceback for a
    Ctrl-C that comes while it starts (the parent ends the pool)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "csv2sr", "convert", str(tables[0]), "-o", str(tmp_path / "o"),
         "--jobs", "2", "--reference-builder", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=STACKS_ON_ABORT,
    )
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(workers) < 3:  # fork server + 2 workers
            workers = _descendants(proc.pid)
            time.sleep(0.1)
        ignored = [_ignores_sigint(pid) for pid in workers]
        assert len(ignored) >= 3 and all(ignored), workers
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = _ended(proc)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr


def test_validate_workers_leave_ctrl_c_to_the_parent(
    tables: tuple[Path, Path], tmp_path: Path
) -> None:
    """validate's own checks run in a pool started as export's and the report's are: each
    worker ignores SIGINT, so a Ctrl-C is the parent's to handle and no worker prints a
    traceback of its own."""
    out = tmp_path / "o"
    assert convert(tables[0], out, jobs=1).converted == 500
    proc = subprocess.Popen(
        [sys.executable, "-m", "csv2sr", "validate", str(out / "sr"), "--jobs", "2", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=STACKS_ON_ABORT,
    )
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _descendants(proc.pid)  # the fork server and the workers it forked
            if len(workers) >= 3 and all(_ignores_sigint(pid) for pid in workers):
                break
            time.sleep(0.05)
        assert len(workers) >= 3 and all(_ignores_sigint(pid) for pid in workers), workers
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = _ended(proc)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr


def _signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1], 16)
    return 0


def _wait_until_caught(pid: int) -> None:
    """Until csv2sr has taken over SIGTERM (and SIGINT with it): before that the
    interpreter is still starting, and a signal ends it as the system does."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if _signal_mask(pid, "SigCgt") & (1 << (signal.SIGTERM - 1)):
                return
        except OSError:
            return  # ended already
        time.sleep(0.01)
    raise AssertionError("csv2sr never caught SIGTERM")


def _descendants(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = next(int(line.split()[1]) for line in status.splitlines()
                      if line.startswith("PPid:"))
        if b"forkserver" in cmdline and (parent == pid or parent in found):
            found.append(int(entry.name))
    return found


def _ignores_sigint(pid: int) -> bool:
    return bool(_signal_mask(pid, "SigIgn") & (1 << (signal.SIGINT - 1)))


def test_an_interrupted_block_cancels_the_tasks_not_started() -> None:
    """:func:`csv2sr.pools.stopping`: leaving the block by an exception (Ctrl-C becomes one)
    waits only for the task that is running, not for the ninety-nine queued behind it."""
    ran: list[int] = []
    started = threading.Event()

    def task(n: int) -> None:
        started.set()
        time.sleep(0.01)
        ran.append(n)

    with pytest.raises(KeyboardInterrupt), stopping(ThreadPoolExecutor(1)) as pool:
        futures = [pool.submit(task, n) for n in range(100)]
        started.wait(10)
        raise KeyboardInterrupt
    assert 1 <= len(ran) < 100
    assert sum(f.cancelled() for f in futures) == 100 - len(ran)


_INSIDE_AN_IMPORT = """
import os, signal, sys, time
from csv2sr.errors import Interrupted, catch_interrupts
catch_interrupts()
# code that runs under importlib's name, as its module-lock callbacks do
inside = compile(
    "os.kill(os.getpid(), signal.SIGTERM)\\n"
    "end = time.monotonic() + 0.2\\n"
    "while time.monotonic() < end: pass\\n"
    "finished = True\\n",
    "<frozen importlib._bootstrap>", "exec")
scope = {"os": os, "signal": signal, "time": time}
try:
    exec(inside, scope)
    time.sleep(30)
except Interrupted as exc:
    print(exc.name, scope.get("finished"))
"""


def test_a_signal_inside_the_import_machinery_is_raised_once_out_of_it() -> None:
    """A SIGTERM that lands in importlib's own frames (seen in CI: a lazy import of
    highdicom, the exception printed as "Exception ignored" and lost) is not raised there
    but a moment later, in the code that called the import, so it still ends the run."""
    proc = subprocess.run([sys.executable, "-c", _INSIDE_AN_IMPORT], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["SIGTERM", "True"], proc.stdout + proc.stderr
    assert proc.stderr == ""


_HELD = """
import os, signal, time
from csv2sr.errors import Interrupted, catch_interrupts, held_interrupts
catch_interrupts()
steps = []
try:
    with held_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        steps.append("block ended")
    steps.append("after the block")
except Interrupted as exc:
    print(exc.name, *steps, sep=",")
"""


def test_a_signal_held_while_workers_start_comes_after_the_block() -> None:
    """:func:`csv2sr.errors.held_interrupts` (around the submits that start worker
    processes): the block runs to its end, then the first signal is raised, once."""
    proc = subprocess.run([sys.executable, "-c", _HELD], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.strip() == "SIGTERM,block ended"
