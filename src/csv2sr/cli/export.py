"""``csv2sr export``: TID 1500 SR files back to a table (CSV, Parquet or JSON lines).

The reader (pydicom, numpy) is imported inside the command, so that ``csv2sr --help``
and the other commands do not pay for it.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from csv2sr.atomic import OutputError
from csv2sr.cli.app import app
from csv2sr.cli.common import (
    EXIT_DATA,
    EXIT_OK,
    EXIT_USAGE,
    Jobs,
    Quiet,
    Verbose,
    err,
    out,
    progress_bar,
    setup_logging,
)

if TYPE_CHECKING:
    from csv2sr.export import ExportResult, Problem
    from csv2sr.images.index import ImageIndex


class TableFormat(str, Enum):
    """Output formats of ``csv2sr export``."""

    csv = "csv"
    tsv = "tsv"
    parquet = "parquet"
    jsonl = "jsonl"


def _print_problem(problem: Problem) -> None:
    label = "[red]error[/red]" if problem.kind.is_error else "[yellow]note[/yellow]"
    err.print(f"{label}: {escape(str(problem))}", highlight=False, soft_wrap=True)


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]usage error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


@app.command("export")
def export_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            help="SR files, or folders searched recursively (*.dcm and any DICOM file).",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", metavar="TABLE",
            help="The table to write (written atomically; its folder is created).",
            dir_okay=False,
        ),
    ],
    table_format: Annotated[
        TableFormat | None,
        typer.Option(
            "--format", "-f",
            help="csv, tsv, parquet or jsonl (default: from TABLE's suffix, else csv).",
        ),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile", "-p", metavar="generic|NAME|PATH.toml",
            help="generic: one row per NUM with all its context; a profile (ccc2017, or a "
                 "TOML file): exactly the columns of the table it reads, one row per row.",
        ),
    ] = "generic",
    images: Annotated[
        Path | None,
        typer.Option(
            "--images", metavar="DIR", exists=True, file_okay=False,
            help="Folder of the source DICOM images (headers only): a profile that finds a "
                 "row's image by its slice ([identity.image] slice) gives the slice columns "
                 "back from the instances the SR references.",
        ),
    ] = None,
    jobs: Jobs = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", metavar="FILE", dir_okay=False,
            help="Keep each file's rows in FILE (JSON), and take them from there for a file "
                 "whose path and bytes are unchanged: a rerun reads only what changed.",
        ),
    ] = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
) -> None:
    """Read TID 1500 Measurement Reports and write one table row per NUM measurement.

    Reads csv2sr's SRs and the other encodings of measured lines: TID 1501 NUM
    INFERRED FROM a SCOORD (the 2018 TCIA reference, OHIF/dcmjs), TID 1410 groups
    with an Image Region (highdicom, Imaging Data Commons), SNOMED CT or SNOMED-RT codes.

    Every file or content item that cannot be read is reported on stderr as
    FILE: item N.N.N: why; content understood but not exported (qualitative
    evaluations) is reported as a note.

    Exit status: 0 every file understood; 1 a file or a measurement could not be
    read, or TABLE could not be written; 2 usage error.
    """
    setup_logging(verbose)
    if profile != "generic":
        from csv2sr.cli.profile import load_or_exit  # noqa: PLC0415

        spec = load_or_exit(profile)  # a broken profile: exit 2 before anything is read
        resolve = spec.identity.image
        if images is None and resolve is not None and resolve.slice is not None \
                and not quiet:
            part = resolve.slice
            named = ", ".join(c for c in (part.column, part.last) if c)
            err.print(f"[yellow]note:[/yellow] {escape(named)}: the SR names the instance, "
                      "not its slice: give the source images (--images DIR) to have the "
                      "slice written back; left empty", highlight=False, soft_wrap=True)
    from csv2sr.export import (  # noqa: PLC0415  (the command's own cost)
        ExportFormatError,
        ExportInputError,
        format_for,
        write_table,
    )
    from csv2sr.export.files import export_inputs  # noqa: PLC0415

    try:
        kind = format_for(output, table_format.value if table_format else None)
        files = export_inputs(paths)
    except (ExportFormatError, ExportInputError) as exc:
        raise _usage(str(exc)) from None
    if not files:
        raise _usage("no DICOM files in " + ", ".join(os.fspath(p) for p in paths))
    index = _image_index(images, quiet=quiet)
    try:
        with progress_bar("Exporting", len(files), enabled=not quiet) as advance:
            result = write_table(
                files, output, format=kind, profile=profile, jobs=jobs,
                progress=lambda done, _total: advance(done), on_problem=_print_problem,
                cache=cache, images=index,
            )
    except ExportFormatError as exc:
        raise _usage(str(exc)) from None
    except OutputError as exc:  # disk full, no permission, read-only: not a usage error
        if exc.wrong_path:  # -o names a path through a file, or a folder
            raise _usage(f"cannot write {exc}") from None
        err.print(f"[red]error:[/red] cannot write {escape(str(exc))}", highlight=False,
                  soft_wrap=True)
        raise typer.Exit(EXIT_DATA) from None
    if not quiet:
        _summary(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_DATA)


def _image_index(images: Path | None, *, quiet: bool) -> ImageIndex | None:
    """The index of the source images' headers (``--images``), or None."""
    if images is None:
        return None
    from csv2sr.images.index import ImageIndex, ImageIndexError  # noqa: PLC0415

    try:
        index = ImageIndex.from_folder(images)
    except ImageIndexError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_DATA) from None
    if not quiet:
        out.print(f"{len(index)} source image headers indexed from {escape(os.fspath(images))}",
                  highlight=False)
    return index


def _summary(result: ExportResult) -> None:
    errors = result.errors
    notes = len(result.problems) - len(errors)
    colour = "green" if result.ok else "yellow"
    rate = result.files / result.seconds if result.seconds > 0 else 0.0
    out.print(
        f"[{colour}]{result.rows} rows from {result.files} files[/{colour}], "
        f"{len(errors)} errors in {result.files_with_errors} files, {notes} notes, "
        f"in {result.seconds:.1f} s ({rate:.0f} files/s) -> "
        f"{escape(os.fspath(result.output or ''))} ({result.format}, {result.profile})",
        highlight=False,
    )
