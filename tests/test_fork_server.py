"""The conversion workers' fork server, started early by ``csv2sr convert``
(csv2sr.conversion.server) and preloaded with highdicom's tables (csv2sr.conversion.warm):
real processes, their real signal masks, real files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from csv2sr.conversion import server
from rowgen import synthetic_csv

pytestmark = pytest.mark.skipif(not server.available(), reason="no fork server on this OS")


def _table(path: Path, rows: int) -> Path:
    return synthetic_csv(path, rows, patients=20, seed=3)


def test_a_pool_is_expected_as_convert_will_start_one(tmp_path: Path) -> None:
    """The guess follows convert's rule (INLINE_ROWS rows without ``jobs``; a pool
    whenever more than one job is given)."""
    small = _table(tmp_path / "small.csv", server.INLINE_ROWS - 1)
    large = _table(tmp_path / "large.csv", server.INLINE_ROWS + 1)
    assert not server.pool_expected(small, 1)
    assert not server.pool_expected(large, 1)
    assert server.pool_expected(small, 2)
    assert server.pool_expected(large, None) == ((os.cpu_count() or 1) > 1)
    assert not server.pool_expected(small, None)
    assert not server.pool_expected(tmp_path / "missing.csv", None)


def test_the_early_server_ignores_ctrl_c_and_holds_the_workers_imports() -> None:
    """Started by start_fork_server, the server has SIGINT ignored (as the pool starts it:
    Ctrl-C is the parent's), the caller's handler is back, and what the server preloads
    includes highdicom's tables (read once there, not in every worker)."""
    script = textwrap.dedent("""
        import multiprocessing.forkserver as fs, signal, sys, time
        from csv2sr.conversion.server import start_fork_server
        before = signal.getsignal(signal.SIGINT)
        start_fork_server()
        assert signal.getsignal(signal.SIGINT) is before
        pid = fs._forkserver._forkserver_pid
        status = open(f"/proc/{pid}/status").read()
        mask = next(l for l in status.splitlines() if l.startswith("SigIgn:")).split()[1]
        ignored = int(mask, 16)
        print("ignored", bool(ignored & (1 << (signal.SIGINT - 1))))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ignored", "True"]
    warm = subprocess.run(
        [sys.executable, "-c", "import csv2sr.conversion.warm\n"
         "from highdicom._standard_utils import get_module_attribute_map as m\n"
         "print(m.cache_info().currsize)"],
        capture_output=True, text=True, timeout=120, check=False)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.strip() == "1"


def test_convert_with_the_early_server_writes_the_same_bytes(tmp_path: Path) -> None:
    """A table large enough for workers, through the command line (server started early)
    and in one process (no server): the same SRs, byte for byte."""
    table = _table(tmp_path / "t.csv", server.INLINE_ROWS + 20)
    for name, jobs in (("pool", []), ("inline", ["--jobs", "1"])):
        done = subprocess.run(
            [sys.executable, "-m", "csv2sr", "convert", str(table), "-o", str(tmp_path / name),
             "--quiet", *jobs], capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr

    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert tree(tmp_path / "pool") == tree(tmp_path / "inline")
    assert len(tree(tmp_path / "pool" / "sr")) == server.INLINE_ROWS + 20


_SERVER_LEAVES = """
import atexit, multiprocessing as mp, os, sys
from csv2sr.conversion.server import start_fork_server

def ends_at_once(_=None):
    # a copy of this process runs its atexit functions: 0 when one of them ends it at
    # once (the server's quick end), else the 7 that follows
    import csv2sr.conversion.warm
    child = os.fork()
    if child == 0:
        atexit._run_exitfuncs()
        os._exit(7)
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])

if __name__ == "__main__":
    start_fork_server()
    with mp.get_context("forkserver").Pool(1) as pool:
        print(pool.map(ends_at_once, [0])[0])  # a worker has the server's atexit table
    print(ends_at_once())  # this process, a command that imports the same module
"""


def test_only_the_server_ends_without_the_interpreter_teardown(tmp_path: Path) -> None:
    """The fork server ends with os._exit once its parent has gone (freeing highdicom's
    tables held the command's pipes open for half a second); a command that imports the
    same module keeps the interpreter's own end."""
    script = tmp_path / "leaves.py"  # a file: the fork server cannot run a script from stdin
    script.write_text(_SERVER_LEAVES, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "7"]
