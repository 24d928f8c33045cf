"""Command line: ``csv2sr convert|validate|export``. The only package that prints.

Exit status: 0 success, 1 when data were rejected, validation failed or a file could not
be written, 2 for usage errors, 130 after Ctrl-C (SIGINT) and 143 after SIGTERM.
"""

from __future__ import annotations

import sys

from csv2sr.cli import convert as _convert  # noqa: F401  (registers the command)
from csv2sr.cli import export as _export  # noqa: F401  (registers the command)
from csv2sr.cli import legacy as _legacy  # noqa: F401  (registers sr-xml, xslt, json)
from csv2sr.cli import profile as _profile  # noqa: F401  (registers profile list|show|check)
from csv2sr.cli import publish as _publish  # noqa: F401  (registers the command)
from csv2sr.cli import release as _release  # noqa: F401  (registers the release commands)
from csv2sr.cli import validate as _validate  # noqa: F401  (registers the command)
from csv2sr.cli.app import app
from csv2sr.cli.common import err
from csv2sr.errors import Interrupted, catch_interrupts

__all__ = ["app", "main"]


def main() -> None:
    """Run a command: an interrupt ends it cleanly, without a traceback, with status 128 +
    the signal number (``csv2sr.__main__.run`` catches the signals even earlier)."""
    catch_interrupts()
    try:
        app()
    except Interrupted as exc:
        err.print(exc.message, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_status)
