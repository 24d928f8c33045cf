"""The package's typed errors: every one names the file (or source) it is about; and
:class:`Interrupted`, what SIGINT and SIGTERM become in a command."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

__all__ = [
    "Csv2srError", "Interrupted", "SourceError", "catch_interrupts", "held_interrupts",
    "leave_interrupts",
]


class Csv2srError(Exception):
    """Base of every error csv2sr raises on purpose."""


class SourceError(Csv2srError):
    """Something about one file, folder or server: ``str()`` is ``"<source>: <message>"``."""

    def __init__(self, source: str | Path, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message

    @property
    def path(self) -> Path:
        """The source as a path (for errors about files)."""
        return Path(self.source)


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM arrived: raised in the main thread so that every ``with``
    and ``finally`` on the way out runs (temporary files removed, pools ended, the lock
    freed), then the command ends with status 128 + the signal number (130, 143).

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` turns
    it into a rejected row or a finding, and click does not turn it into "Aborted!".
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        """What the command line prints."""
        return f"csv2sr: interrupted by {self.name}: stopped, nothing half-written left in place"


#: Where a signal must not raise: importlib's own frames hold the import lock or run its
#: weak-reference callbacks (an exception there is printed as "Exception ignored" and lost).
_IMPORT_MACHINERY = "<frozen importlib."
#: How long a deferred signal waits before it is tried again, in seconds.
_RETRY = 0.005
_deferred: list[int] = []


def _in_import_machinery(frame: FrameType | None) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(_IMPORT_MACHINERY)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    # A second signal while cleaning up ends the process at once (the next run removes
    # what is left); the first one unwinds.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _in_import_machinery(frame) and hasattr(signal, "setitimer"):
        # Inside an import's bookkeeping: raise a moment later, once it is back in code
        # that unwinds (seen in CI: a SIGTERM during a lazy import of highdicom).
        _deferred.append(signum)
        signal.signal(signal.SIGALRM, _retry)
        signal.setitimer(signal.ITIMER_REAL, _RETRY)
        return
    raise Interrupted(signum)


def _retry(_signum: int, frame: FrameType | None) -> None:
    if _in_import_machinery(frame):
        signal.setitimer(signal.ITIMER_REAL, _RETRY)
        return
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    raise Interrupted(_deferred.pop())


def catch_interrupts() -> None:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` (the command line's entry point,
    before anything heavy is imported)."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)


def leave_interrupts() -> None:
    """In a worker process: Ctrl-C is the parent's to handle (it ends the pool), so the
    worker ignores SIGINT and prints no traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM wait for the end of the block, then are delivered as they would
    have been (one of them: a second one is the same request).

    For a block that starts worker processes: raised half-way through a worker's birth, a
    signal left a worker born that its pool did not know, which took an end-of-work
    sentinel meant for another, so the pool's end waited for ever; or left workers still
    being born after the parent had removed the semaphores they unpickle.  Outside the main
    thread, where no signal handler runs, the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in held[:1]:
            signal.raise_signal(signum)
