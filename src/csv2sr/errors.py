"""The package's typed errors: every one names the file (or source) it is about; and
:class:`Interrupted`, what SIGINT and SIGTERM become in a command."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

__all__ = ["Csv2srError", "Interrupted", "SourceError", "catch_interrupts", "leave_interrupts"]


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


def _interrupted(signum: int, frame: FrameType | None) -> None:
    # A second signal while cleaning up ends the process at once (the next run removes
    # what is left); the first one unwinds.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Interrupted(signum)


def catch_interrupts() -> None:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` (the command line's entry point,
    before anything heavy is imported)."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)


def leave_interrupts() -> None:
    """In a worker process: Ctrl-C is the parent's to handle (it ends the pool), so the
    worker ignores SIGINT and prints no traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
