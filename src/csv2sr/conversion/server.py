"""The fork server of the conversion workers, started as early as a command knows it will
need it.

``convert`` starts its workers from a fork server (:mod:`multiprocessing.forkserver`) that
first imports :data:`PRELOAD` (:mod:`csv2sr.conversion.warm`: the workers' code and
highdicom's tables, about 0.8 s of CPU).  Started by the pool, that import came after the
command's own imports and held the first worker back; started by :func:`start_fork_server`
at the top of the command, the server imports while the command does.  This module imports
nothing heavy (the command line calls it before it imports pydicom).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import stat
import threading
from pathlib import Path

from csv2sr.errors import held_interrupts

__all__ = [
    "INLINE_ROWS", "PRELOAD", "available", "ensure_fork_server", "pool_expected",
    "start_fork_server",
]

INLINE_ROWS = 256
"""Fewer rows than this are converted in the calling process when ``jobs`` is not given:
starting workers (a fork server, and each worker's imports and templates) costs more
than the rows would take, and a make rule that converts one small table must be cheap."""

PRELOAD = ["csv2sr.conversion.warm"]
"""What the fork server imports before it forks a worker (:mod:`csv2sr.conversion.warm`)."""


def available() -> bool:
    """The fork server start method exists here (POSIX)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def pool_expected(csv_path: Path, jobs: int | None) -> bool:
    """Whether ``convert`` of ``csv_path`` will start workers: more than one job, and
    ``jobs`` given or the file holding at least :data:`INLINE_ROWS` lines after its
    header.  A guess from lines, not rows (a quoted cell may hold a newline): a wrong
    guess only starts the server for nothing (its CPU, not the result).  Only a regular
    file is looked at: a stream (FIFO, device) is read once, by the conversion."""
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers <= 1 or not available():
        return False
    if jobs is not None:
        return True
    try:
        if not stat.S_ISREG(os.stat(csv_path).st_mode):
            return False  # a FIFO, a device or stdin is read once, by the conversion only
        with csv_path.open("rb") as handle:
            lines = 0
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                lines += chunk.count(b"\n")
                if lines > INLINE_ROWS:
                    return True
    except OSError:
        return False
    return False


def start_fork_server() -> None:
    """Start the fork server now, with :data:`PRELOAD`, unless it runs already
    (:func:`ensure_fork_server`; a SIGTERM that comes meanwhile is held and delivered once
    the server is started).  Outside the main thread (where signals cannot be handled)
    nothing is started: the pool starts the server itself.
    """
    if not available() or threading.current_thread() is not threading.main_thread():
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    with held_interrupts():
        ensure_fork_server()


def ensure_fork_server() -> None:
    """:func:`multiprocessing.forkserver.ensure_running` with SIGINT ignored meanwhile: a
    process started with a signal ignored keeps it ignored (POSIX exec), and so does every
    worker it forks, so they ignore Ctrl-C from birth (the parent ends them), with no
    window for a traceback.  A Ctrl-C in those milliseconds is lost; the next one counts.
    Outside the main thread (where no handler can be set) nothing is done: the pool starts
    the server itself.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)
