"""How a ``csv2sr`` process ends (csv2sr.__main__.leave): its status and its output as the
interpreter's own exit would give them, its ``atexit`` work done, without the teardown
that freed highdicom's tables for half a second.  Real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_LEAVE = """
import atexit, sys, threading, time
from pathlib import Path
from csv2sr.__main__ import leave
mark = Path(sys.argv[1])
atexit.register(lambda: mark.write_text(mark.read_text() + "atexit;"))
mark.write_text("")
if sys.argv[3] == "thread":  # a non-daemon thread still working: the normal exit waits
    threading.Thread(target=lambda: (time.sleep(0.3), mark.write_text(
        mark.read_text() + "thread;"))).start()
sys.stdout.write("buffered output")  # no newline: still in the buffer
sys.stderr.write("buffered error")
code = sys.argv[2]
leave(None if code == "None" else int(code) if code.lstrip("-").isdigit() else code)
"""


@pytest.mark.parametrize(("code", "status"), [("None", 0), ("0", 0), ("1", 1), ("130", 130),
                                              ("-1", 255), ("a message", 1)])
def test_leave_gives_the_status_and_output_of_a_normal_exit(
        tmp_path: Path, code: str, status: int) -> None:
    mark = tmp_path / "mark"
    done = subprocess.run([sys.executable, "-c", _LEAVE, str(mark), code, "-"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == status
    assert done.stdout == "buffered output"
    assert done.stderr.startswith("buffered error")
    if code == "a message":  # not a number: the interpreter prints it, as sys.exit does
        assert done.stderr.rstrip().endswith("a message")
    assert mark.read_text() == "atexit;"


def test_leave_waits_for_a_thread_still_running(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    done = subprocess.run([sys.executable, "-c", _LEAVE, str(mark), "3", "thread"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3
    assert mark.read_text() == "thread;atexit;"


def test_the_command_line_ends_through_leave(tmp_path: Path) -> None:
    """``python -m csv2sr`` keeps its statuses: 0 for --help, 2 for a usage error, with
    the message on standard error."""
    ok = subprocess.run([sys.executable, "-m", "csv2sr", "--help"], capture_output=True,
                        text=True, timeout=60, check=False)
    assert ok.returncode == 0
    assert "convert" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "csv2sr", "convert", str(tmp_path / "no.csv"),
                          "-o", str(tmp_path / "out")], capture_output=True, text=True,
                         timeout=60, check=False)
    assert bad.returncode == 2
    assert "no.csv" in bad.stderr
    script = textwrap.dedent("""
        import atexit, sys
        import csv2sr.__main__ as entry
        calls = []
        entry.leave = lambda code: (calls.append(code), sys.exit(code))
        sys.argv = ["csv2sr", "--help"]
        try:
            entry.run()
        except SystemExit:
            pass
        print(calls)
    """)
    seen = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert seen.stdout.strip().splitlines()[-1] == "[0]"
