"""The typer application object that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="csv2sr",
    help=(
        "Turn tables of image annotations into DICOM TID 1500 Measurement Reports, "
        "validate SR files, and read them back into tables."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: rewrapped to the terminal, and without typer's Rich renderer
    # (rich.markdown, markdown_it: a tenth of a second of every --help; tests/test_startup.py)
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Turn tables of image annotations into DICOM TID 1500 Measurement Reports, validate
    SR files, and read them back into tables."""
