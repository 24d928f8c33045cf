"""``python -m csv2sr`` and the ``csv2sr`` console script.

SIGINT and SIGTERM are caught first, before the commands (and their libraries) are
imported, so that a Ctrl-C even at start-up ends without a traceback (exit 130/143).

The process ends without tearing the interpreter down (:func:`leave`): once a command
has returned there is nothing left to do but free memory, and freeing highdicom's tables
of the standard (22 MB of JSON read into dicts on the first SR it builds) took 0.4-0.6 s
of a one-row ``convert``.
"""

import atexit
import os
import sys
import threading

from csv2sr.errors import Interrupted, catch_interrupts


def leave(code: str | int | None) -> None:
    """End the process with ``code`` (a ``SystemExit`` code) as the interpreter would,
    but without its teardown: the ``atexit`` functions run (logging's flush, pools'
    ends, temporary folders' removal), then the standard streams are flushed, then
    ``os._exit``.  While another non-daemon thread runs, or when a stream cannot be
    flushed (a closed pipe), or for a code that is not a number, or under a profiler or
    tracer (coverage, pyinstrument: they write their reports at the teardown), the
    interpreter's own exit is taken instead, with its usual messages and status."""
    status = 0 if code is None else code
    if not isinstance(status, int) or sys.getprofile() is not None or (
            sys.gettrace() is not None) or any(
            t.is_alive() and not t.daemon for t in threading.enumerate()
            if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(status & 0xFF)


def run() -> None:
    """Entry point: catch the signals, then run the command line, then :func:`leave`."""
    catch_interrupts()
    try:
        from csv2sr.cli import main  # noqa: PLC0415  (after the signals are caught)

        main()
    except Interrupted as exc:  # before the command line took over
        sys.stderr.write(exc.message + "\n")
        leave(exc.exit_status)
    except SystemExit as exc:
        leave(exc.code)
    leave(0)


if __name__ == "__main__":
    run()
