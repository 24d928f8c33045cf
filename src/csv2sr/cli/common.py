"""What every command shares: consoles, logging set-up and a progress bar.

Only typer and rich's console are imported here: every command module imports this one,
and ``csv2sr --help`` must not pay for what a command needs (rich's logging handler and
progress bar are imported when they are used).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Annotated

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2

# Options every command spells the same way.
Jobs = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Worker processes (default: the CPU count)."),
]
ImagesTimeout = Annotated[
    float,
    typer.Option("--images-timeout", metavar="SECONDS", min=0.1,
                 help="With --images-url: seconds to wait for each answer of the server."),
]
ImagesRetries = Annotated[
    int,
    typer.Option("--images-retries", min=0, max=20,
                 help="With --images-url: retries of a request that got no answer in time, "
                 "a refused or dropped connection, or HTTP 408, 429, 503 or 504 (0.25 s, "
                 "0.5 s, 1 s, ... apart); then the index stops with one error."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")]
Verbose = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")
]


def setup_logging(verbose: int) -> None:
    """Library logs go to stderr: warnings by default, -v info, -vv debug."""
    from rich.logging import RichHandler  # noqa: PLC0415  (a command's cost, not --help's)

    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_time=False, show_path=False)],
        force=True,
    )
    # pydicom logs a warning for every odd value it reads (an invalid UI in a file being
    # validated or exported): csv2sr reports what matters as findings or problems, so
    # pydicom's own words are shown only with -v.
    logging.getLogger("pydicom").setLevel(logging.ERROR if verbose <= 0 else level)


def bar_shown(*, enabled: bool) -> bool:
    """Whether :func:`progress_bar` draws a bar (enabled, and stderr is a terminal): what
    only the bar needs (a line count of the input) is worked out only then."""
    return enabled and err.is_terminal


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None, *, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; a no-op callback otherwise."""
    if not bar_shown(enabled=enabled):
        yield lambda done: None
        return
    from rich.progress import (  # noqa: PLC0415  (only when a bar is drawn)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

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

