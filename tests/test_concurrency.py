"""Two conversions into one OUTDIR at once: the second stops at once, naming the first.

Real ``csv2sr convert`` processes racing on real folders; locks left by killed runs.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from csv2sr.conversion.batch import convert
from csv2sr.conversion.outputs import LOCK_NAME
from rowgen import synthetic_csv
from test_stale_output import assert_invariant


def _start(table: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "csv2sr", "convert", str(table), "-o", str(out), "--quiet",
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _wait_for_lock(out: Path, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            holder = (out / LOCK_NAME).read_text()
        except FileNotFoundError:
            holder = ""
        if holder.endswith("\n"):
            return holder
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tables")
    return (synthetic_csv(folder / "slow.csv", 300, patients=30, seed=3),
            synthetic_csv(folder / "other.csv", 40, patients=5, seed=4, first_order=5000))


def test_the_second_run_fails_fast_and_names_the_first(
    tables: tuple[Path, Path], tmp_path: Path
) -> None:
    slow, other = tables
    out = tmp_path / "out"
    first = _start(slow, out, "--reference-builder", "--jobs", "1")
    holder = _wait_for_lock(out, first)
    assert f"pid {first.pid} on {socket.gethostname()}, started " in holder
    second = _start(other, out, "--jobs", "1")
    _, stderr = second.communicate(timeout=120)
    still_running = first.poll() is None
    assert second.returncode == 1, stderr
    assert still_running, "the second run waited for the first instead of failing fast"
    assert "another csv2sr convert is writing into this folder" in stderr
    assert f"pid {first.pid}" in stderr and "Traceback" not in stderr
    _, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    assert_invariant(out)
    assert not list((out / "sr").rglob("order-5*.dcm")), "the refused run wrote nothing"
    assert not (out / LOCK_NAME).exists()


@pytest.mark.property
@pytest.mark.parametrize("seed", range(3))
def test_racing_runs_leave_one_consistent_tree(
    tables: tuple[Path, Path], tmp_path: Path, seed: int
) -> None:
    """Started together (a random offset): every run either finishes (0) or is refused (1,
    saying why); the tree left is the manifest's, exactly."""
    slow, other = tables
    out = tmp_path / "out"
    chance = random.Random(seed)
    runs = [_start(slow, out, "--jobs", str(chance.choice([1, 2])))]
    time.sleep(chance.uniform(0, 1.5))
    runs.append(_start(other, out, "--jobs", str(chance.choice([1, 2]))))
    errors = [run.communicate(timeout=600)[1] for run in runs]
    results = [(run.returncode, err) for run, err in zip(runs, errors, strict=True)]
    assert any(code == 0 for code, _ in results), results
    for code, stderr in results:
        assert "Traceback" not in stderr
        assert code == 0 or (code == 1 and "another csv2sr convert" in stderr), stderr
    assert_invariant(out)


def test_a_killed_run_leaves_no_lock_that_blocks(tables: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    slow, other = tables
    out = tmp_path / "out"
    first = _start(slow, out, "--reference-builder", "--jobs", "1")
    _wait_for_lock(out, first)
    os.killpg(first.pid, signal.SIGKILL)  # no cleanup at all: the lock file stays
    first.wait(timeout=60)
    assert (out / LOCK_NAME).exists()
    result = convert(other, out, jobs=1)  # the system released the dead run's lock
    assert result.converted == 40
    assert_invariant(out)
    assert not (out / LOCK_NAME).exists()


def test_a_lock_held_by_another_process_is_respected(tmp_path: Path,
                                                     tables: tuple[Path, Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid 1 on elsewhere\\n'); "
         "print('held', flush=True); time.sleep(600)", str(out / LOCK_NAME)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        done = subprocess.run(
            [sys.executable, "-m", "csv2sr", "convert", str(tables[1]), "-o", str(out)],
            capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1 and "pid 1 on elsewhere" in done.stderr, done.stderr
    assert not (out / "sr").exists()
