"""``csv2sr convert``: one TID 1500 SR per CSV row, a manifest and the rejected rows.

The conversion (pydicom, highdicom, numpy) is imported inside the command, so that
``csv2sr --help`` and the other commands do not pay for it.
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
    ImagesRetries,
    ImagesTimeout,
    Jobs,
    Quiet,
    Verbose,
    bar_shown,
    err,
    out,
    progress_bar,
    setup_logging,
)
from csv2sr.cli.profile import ProfileOption, load_or_exit
from csv2sr.errors import Interrupted

if TYPE_CHECKING:
    from csv2sr.conversion.batch import ConversionResult
    from csv2sr.images.index import ImageIndex
    from csv2sr.mapping.spec import Spec


class Codes(str, Enum):
    """SNOMED flavour (see ``csv2sr.dicom.codes.CodeMode``)."""

    sct = "sct"
    srt = "srt"


def _count_lines(path: Path) -> int | None:
    """Lines of a regular file, for the progress bar; None for a stream (a FIFO, a device),
    which is read once, by the conversion, and may never end."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            return max(
                0, sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) - 1
            )
    except OSError:
        return None


@app.command("convert")
def convert_command(
    csv_path: Annotated[
        Path,
        typer.Argument(
            metavar="ANNOTATIONS.csv",
            help="The annotation table (its columns as the profile says).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="OUTDIR",
            help="Folder for the SRs, manifest.csv and rejected.csv.",
            file_okay=False,
        ),
    ],
    jobs: Jobs = None,
    codes: Annotated[
        Codes,
        typer.Option(
            "--codes",
            help="sct: SNOMED CT (current DICOM); srt: the deprecated 2018 SNOMED-RT codes "
            "for old readers.",
        ),
    ] = Codes.sct,
    profile: ProfileOption = "ccc2017",
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            metavar="DIR",
            help="Folder of the source DICOM images: headers are read (never pixel data) to "
            "check every row against its image and to copy patient, study and image "
            "attributes into the SR.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    images_url: Annotated[
        str | None,
        typer.Option(
            "--images-url",
            metavar="URL",
            help="The same from a DICOMweb server (WADO-RS metadata of the studies in the table).",
        ),
    ] = None,
    join: Annotated[
        list[str] | None,
        typer.Option(
            "--join",
            metavar="NAME=PATH",
            help="Another file for the profile's join NAME ([[joins]]: a table mapping a key "
            "column to more columns, e.g. LUNA16's series-map.txt); repeatable.",
        ),
    ] = None,
    ohif: Annotated[
        bool,
        typer.Option(
            "--ohif",
            help="Write the Tracking Identifier of each group that has a Cornerstone3D tool "
            "(Length, Bidirectional, RectangleROI, EllipticalROI, Probe) as "
            "Cornerstone3DTools@^0.1.0:<Tool>:<identifier>, so that OHIF offers to load the "
            "SRs as editable measurements (their own SOP Instance and Series UIDs; export "
            "--profile strips the prefix again). See docs/ohif.md.",
        ),
    ] = False,
    reference_builder: Annotated[
        bool,
        typer.Option(
            "--reference-builder",
            help="Build every SR with highdicom instead of the byte-identical, faster "
            "template path.",
        ),
    ] = False,
    images_timeout: ImagesTimeout = 30.0,
    images_retries: ImagesRetries = 2,
    cache: Annotated[Path | None, typer.Option(
        "--cache", metavar="FILE", dir_okay=False,
        help="Keep what each SR was written as in FILE (JSON), and build again only the "
        "SRs whose rows (or image headers) changed or whose file in OUTDIR/sr is no longer "
        "as it was written, when csv2sr, its libraries, the profile and the options are "
        "the same: a rerun after one row changed builds one SR. The files are the bytes "
        "a run without it writes.")] = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
) -> None:
    """Convert the rows of ANNOTATIONS.csv into DICOM TID 1500 Measurement Reports.

    The profile (--profile NAME or PATH.toml; csv2sr profile list) says what each column
    means and which rows make one SR (one per row for ccc2017). Every row is checked
    before anything is built. A bad row is reported as FILE:LINE: COLUMN: problem (value),
    written to OUTDIR/rejected.csv with its reason, and the other rows are still converted.

    Output: OUTDIR/sr/FOLDER/NAME.dcm (the profile's file_name; ccc2017:
    PatientID/order-NNNN.dcm), OUTDIR/manifest.csv (one line per input row),
    OUTDIR/rejected.csv. The same table always gives byte-identical files.

    OUTDIR/sr must hold only what csv2sr wrote there (anything else stops the run
    before it starts); SRs of rows no longer in the CSV are removed. One run at a time
    per OUTDIR: a second one stops at once and names the first.

    Exit status: 0 all rows converted; 1 a row was rejected, the file is unusable or
    OUTDIR cannot be written; 2 usage error (a broken profile too); 130/143 interrupted
    (Ctrl-C/SIGTERM).
    """
    setup_logging(verbose)
    if images is not None and images_url is not None:
        err.print("[red]error:[/red] give --images or --images-url, not both")
        raise typer.Exit(EXIT_USAGE)
    from csv2sr.conversion.server import pool_expected, start_fork_server  # noqa: PLC0415

    if pool_expected(csv_path, jobs) and not _cache_kept(cache):
        start_fork_server()  # its imports overlap with this process's own (conversion.server)
    spec = load_or_exit(profile)
    if spec.identity.resolved and images is None and images_url is None:
        what = ", ".join(spec.identity.needs) or "the annotated image"
        err.print(
            f"[red]usage error:[/red] {escape(str(spec.path))}: identity: {escape(what)} "
            "come from the source images: give --images DIR or --images-url URL",
            highlight=False, soft_wrap=True,
        )
        raise typer.Exit(EXIT_USAGE)
    from csv2sr.conversion.batch import convert  # noqa: PLC0415  (the command's own cost)
    from csv2sr.conversion.checks import InputFileError  # noqa: PLC0415
    from csv2sr.images.index import ImageIndexError  # noqa: PLC0415
    from csv2sr.mapping.joins import JoinError, read_joins  # noqa: PLC0415

    spec = _with_joins(spec, join or [])
    if images is None and images_url is None and any(
            g.region is not None and g.region.patient for g in spec.groups):
        err.print(
            f"[red]usage error:[/red] {escape(str(spec.path))}: a point in patient "
            "coordinates needs its series' Frame of Reference UID: give the source images "
            "(--images DIR or --images-url URL)", highlight=False, soft_wrap=True,
        )
        raise typer.Exit(EXIT_USAGE)
    try:
        read_joins(spec)  # a broken join file stops the run before the images are read
        index = _image_index(csv_path, images, images_url, spec, quiet=quiet, output=output,
                             web=(images_timeout, images_retries))
        lines = _count_lines(csv_path) if bar_shown(enabled=not quiet) else None
        with progress_bar("Converting", lines, enabled=not quiet) as advance:
            result = convert(
                csv_path,
                output,
                jobs=jobs,
                codes=codes.value,
                profile=spec,
                images=index,
                progress=advance,
                fast=not reference_builder,
                ohif=ohif,
                cache=cache,
            )
    except (InputFileError, ImageIndexError, JoinError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_DATA) from None
    except OutputError as exc:  # the system failed (1), or -o names a path through a file (2)
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE if exc.wrong_path else EXIT_DATA) from None
    except Interrupted:
        err.print(
            f"convert: stopped before the last row, so no manifest.csv was written; the SRs "
            f"in {escape(os.fspath(output / 'sr'))} are complete files. Run the same command "
            "again to finish: it removes what this run left.",
            highlight=False, soft_wrap=True,
        )
        raise
    _report(result, quiet=quiet)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_DATA)


def _cache_kept(cache: Path | None) -> bool:
    """A cache file from an earlier run is there: most SRs are likely written already, and
    the workers are started only when enough are left to build (conversion.batch)."""
    return cache is not None and cache.is_file() and cache.stat().st_size > 0


def _image_index(
    csv_path: Path, images: Path | None, url: str | None, spec: Spec, *, quiet: bool,
    output: Path, web: tuple[float, int],
) -> ImageIndex | None:
    """Index the source image headers (folder or DICOMweb: ``web`` is the timeout and the
    retries of each request), once, before converting; a folder's index is cached in
    OUTDIR/cache/ for the next run."""
    if images is None and url is None:
        return None
    from csv2sr.images.index import ImageIndex  # noqa: PLC0415

    if images is not None:
        index = ImageIndex.from_folder(images, cache_in=output)
    else:
        studies = _study_uids(csv_path, spec)
        index = ImageIndex.from_dicomweb(str(url), study_uids=studies, timeout=web[0],
                                         attempts=web[1] + 1)
    if not quiet:
        cached = f" (from {escape(os.fspath(output / 'cache'))})" if index.cached else ""
        out.print(
            f"{len(index)} source image headers indexed from {escape(index.origin)}{cached}",
            highlight=False,
        )
    for skipped in index.skipped:
        err.print(
            f"skipped {escape(skipped.source)}: {escape(skipped.reason)}",
            highlight=False,
            soft_wrap=True,
        )
    for dup in index.duplicates:
        kind = "a copy" if dup.same_header else "[yellow]different headers[/yellow]"
        err.print(
            f"warning: SOP Instance UID {dup.sop_instance_uid} is in two files ({kind}): "
            f"kept {escape(dup.kept)}, ignored {escape(dup.other)}",
            highlight=False,
            soft_wrap=True,
        )
    return index


def _study_uids(csv_path: Path, spec: Spec) -> list[str] | None:
    """The distinct Study Instance UIDs of the table (what a DICOMweb index must fetch);
    None when the table has none (identity.needs lists study_uid): every study."""
    from csv2sr.conversion.checks import InputFileError  # noqa: PLC0415
    from csv2sr.conversion.read import read_table  # noqa: PLC0415

    if not csv_path.is_file():
        raise InputFileError(csv_path, "--images-url reads the table before converting it: "
                             "give a file, not a stream")
    source = spec.identity.study_uid
    if source is None:  # the study comes from the images: every study of the server
        return None
    if source.const is not None:
        return [source.const]
    column = source.column if source is not None else ""
    with read_table(csv_path, delimiter=spec.input.delimiter,
                    encoding=spec.input.encoding) as table:
        return sorted({record.cells.get(column, "") for record in table} - {""})


def _report(result: ConversionResult, *, quiet: bool) -> None:
    for error in result.errors:
        for message in error.messages():
            err.print(escape(message), highlight=False, soft_wrap=True)
    if quiet:
        return
    colour = "green" if result.ok else "yellow"
    grouped = f" into {result.documents} SRs" if result.documents != result.converted else ""
    out.print(
        f"[{colour}]{result.rows_read} rows read, {result.converted} converted{grouped}, "
        f"{result.rejected} rejected[/{colour}] in {result.seconds:.1f} s "
        f"({result.rate:.0f} SR/s) -> {escape(os.fspath(result.outdir))}",
        highlight=False,
    )
    if result.rejected:
        out.print(
            f"rejected rows and reasons: {escape(os.fspath(result.outdir / 'rejected.csv'))}",
            highlight=False,
        )


def _with_joins(spec: Spec, given: list[str]) -> Spec:
    """The profile with the join files ``--join NAME=PATH`` gives (a usage error for a
    malformed option or an unknown NAME)."""
    from csv2sr.mapping.joins import JoinError, with_join_files  # noqa: PLC0415

    files: dict[str, Path] = {}
    for option in given:
        name, sep, path = option.partition("=")
        if not sep or not name or not path:
            err.print(f"[red]usage error:[/red] --join {escape(option)}: give NAME=PATH",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USAGE)
        files[name] = Path(path)
    if not files:
        return spec
    try:
        return with_join_files(spec, files)
    except JoinError as exc:
        err.print(f"[red]usage error:[/red] {escape(str(exc))}", highlight=False,
                  soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
