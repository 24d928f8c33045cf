"""Command line: ``csv2sr convert|validate|export``. The only package that prints.

Exit status: 0 success, 1 when data were rejected or validation failed, 2 for usage errors.
"""

from __future__ import annotations

from csv2sr.cli import convert as _convert  # noqa: F401  (registers the command)
from csv2sr.cli import export as _export  # noqa: F401  (registers the command)
from csv2sr.cli import legacy as _legacy  # noqa: F401  (registers sr-xml, xslt, json)
from csv2sr.cli import publish as _publish  # noqa: F401  (registers the command)
from csv2sr.cli import release as _release  # noqa: F401  (registers the release commands)
from csv2sr.cli import validate as _validate  # noqa: F401  (registers the command)
from csv2sr.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
