"""What every command shares: consoles, logging set-up, a progress bar, interrupts."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

out = Console()
err = Console(stderr=True)

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128
"""Plus the signal number: 130 for SIGINT (Ctrl-C), 143 for SIGTERM, as a shell reports."""

# Options every command spells the same way.
Jobs = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Worker processes (default: the CPU count)."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")]
Verbose = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")
]


def setup_logging(verbose: int) -> None:
    """Library logs go to stderr: warnings by default, -v info, -vv debug."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_time=False, show_path=False)],
        force=True,
    )


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None, *, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; a no-op callback otherwise."""
    if not enabled or not err.is_terminal:
        yield lambda done: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: raised in the main thread so that every ``with`` and
    ``finally`` on the way out runs (temporary files removed, pools ended, the lock freed).

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
        return EXIT_INTERRUPTED + self.signum


def _interrupted(signum: int, frame: FrameType | None) -> None:
    # A second signal while cleaning up ends the process at once (the next run removes
    # what is left); the first one unwinds.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Interrupted(signum)


def catch_interrupts() -> None:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` (the console script's main)."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
