"""``csv2sr validate PATH...``: own checks, dciodvfy and (opt-in) pixelmed on SR files.

Exit status: 0 when no finding reaches ``--fail-on`` (default error), 1 otherwise, 2 for
usage errors.  ``--format`` chooses stdout; ``--json``/``--junit``/``--report-dir`` write
files atomically; a file that cannot be written (disk full, no permission, read-only) is
exit status 1 with its path.  The validator (pydicom, lxml) is imported inside the command,
so that ``csv2sr --help`` and the other commands do not pay for it.
"""

from __future__ import annotations

import re
import sys
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
    err,
    out,
    progress_bar,
    setup_logging,
)

if TYPE_CHECKING:
    from csv2sr.validate.findings import Severity, ValidationReport


class OutputFormat(str, Enum):
    text = "text"
    json = "json"
    junit = "junit"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}
"""The colour of each severity (:class:`csv2sr.validate.findings.Severity` values)."""


@app.command("validate")
def validate_command(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH",
                                                help="SR files or folders (recursive).")],
    jobs: Jobs = None,
    output_format: Annotated[OutputFormat, typer.Option(
        "--format", help="What goes to stdout.")] = OutputFormat.text,
    json_file: Annotated[Path | None, typer.Option(
        "--json", metavar="FILE", dir_okay=False, help="Also write the JSON report.")] = None,
    junit_file: Annotated[Path | None, typer.Option(
        "--junit", metavar="FILE", dir_okay=False, help="Also write JUnit XML.")] = None,
    report_dir: Annotated[Path | None, typer.Option(
        "--report-dir", metavar="DIR", file_okay=False,
        help="One text report per input file.")] = None,
    fail_on: Annotated[FailOn, typer.Option(
        "--fail-on", help="Lowest severity that fails the run.")] = FailOn.error,
    no_dciodvfy: Annotated[bool, typer.Option(
        "--no-dciodvfy", help="Skip dciodvfy.")] = False,
    pixelmed: Annotated[bool, typer.Option(
        "--pixelmed", help="Also run pixelmed's DicomSRValidator (java + jar).")] = False,
    pixelmed_jar: Annotated[Path | None, typer.Option(
        "--pixelmed-jar", metavar="JAR", dir_okay=False,
        help="The pixelmed jar (default: $PIXELMED_JAR, then /usr/share/java).")] = None,
    images: Annotated[Path | None, typer.Option(
        "--images", metavar="DIR", exists=True, file_okay=False,
        help="Also check every SR against its source images in DIR: references resolve, "
        "patient/study attributes agree, no duplicate SOP Instance UIDs, and dcentvfy.")] = None,
    images_url: Annotated[str | None, typer.Option(
        "--images-url", metavar="URL",
        help="The same against the image headers of a DICOMweb server.")] = None,
    images_timeout: ImagesTimeout = 30.0,
    images_retries: ImagesRetries = 2,
    cache: Annotated[Path | None, typer.Option(
        "--cache", metavar="FILE", dir_okay=False,
        help="Keep each file's findings in FILE (JSON), and take them from there for a "
        "file whose path and bytes are unchanged, when csv2sr, the validators and the "
        "options are too: a rerun checks only what changed.")] = None,
    relative_to: Annotated[Path | None, typer.Option(
        "--relative-to", metavar="DIR", file_okay=False,
        help="Write the files' paths in --json, --junit and --format output relative to "
        "DIR (a release folder), so that they do not depend on where it is.")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bar and no text output.")] = False,
) -> None:
    """Validate DICOM SR files: csv2sr's own checks, dciodvfy, optionally pixelmed."""
    setup_logging(0)
    from csv2sr.images.index import ImageIndexError  # noqa: PLC0415  (the command's own cost)
    from csv2sr.validate import ValidationError, list_inputs, validate_files  # noqa: PLC0415
    from csv2sr.validate.findings import Severity  # noqa: PLC0415
    from csv2sr.validate.report import to_json, to_junit  # noqa: PLC0415

    threshold = Severity(fail_on.value)
    try:
        listing = list_inputs(paths)
        if not listing.files and not listing.problems:
            skipped = f" ({len(listing.skipped)} skipped: not DICOM)" if listing.skipped else ""
            raise ValidationError(
                f"no files to validate under {', '.join(map(str, paths))}{skipped}")
        with progress_bar("validating", len(listing.files), enabled=not quiet) as advance:
            report = validate_files(
                listing, jobs=jobs, use_dciodvfy=not no_dciodvfy, use_pixelmed=pixelmed,
                progress=advance, pixelmed_jar=pixelmed_jar, cache=cache,
            )
        if images is not None or images_url is not None:
            _check_against_images(report, images, images_url,
                                  web=(images_timeout, images_retries))
    except ValidationError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    except ImageIndexError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_DATA) from None
    except OutputError as exc:  # the cache could not be written
        err.print(f"[red]error:[/red] cannot write {escape(str(exc))}", soft_wrap=True,
                  highlight=False)
        raise typer.Exit(EXIT_USAGE if exc.wrong_path else EXIT_DATA) from None
    if relative_to is not None:
        report = report.relative_to(relative_to)
    for note in report.notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}")
    if report.skipped and not quiet:
        err.print(f"[dim]info:[/dim] {len(report.skipped)} file(s) skipped (not validated): "
                  f"{escape(_skipped_names(report))}", soft_wrap=True, highlight=False)
    try:
        _write_outputs(report, threshold, json_file, junit_file, report_dir)
    except OutputError as exc:  # the system failed (1), or the path named is wrong (2)
        err.print(f"[red]error:[/red] cannot write {escape(str(exc))}", soft_wrap=True,
                  highlight=False)
        raise typer.Exit(EXIT_USAGE if exc.wrong_path else EXIT_DATA) from None
    if output_format is OutputFormat.json:
        sys.stdout.write(to_json(report, threshold))
    elif output_format is OutputFormat.junit:
        sys.stdout.write(to_junit(report, threshold).decode("utf-8"))
    elif not quiet:
        _print_text(report, threshold)
    raise typer.Exit(EXIT_OK if report.ok(threshold) else EXIT_DATA)


def _skipped_names(report: ValidationReport, limit: int = 10) -> str:
    names = [s.relative for s in report.skipped]
    more = f", ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more + " (see --json)"


def _write_outputs(
    report: ValidationReport, threshold: Severity, json_file: Path | None,
    junit_file: Path | None, report_dir: Path | None,
) -> None:
    """The files asked for, each atomically (:mod:`csv2sr.atomic`)."""
    from csv2sr.validate.report import to_json, to_junit, write_atomic, write_report_dir  # noqa: PLC0415

    if json_file is not None:
        write_atomic(json_file, to_json(report, threshold))
    if junit_file is not None:
        write_atomic(junit_file, to_junit(report, threshold))
    if report_dir is not None:
        write_report_dir(report, report_dir)


def _check_against_images(
    report: ValidationReport, images: Path | None, url: str | None,
    *, web: tuple[float, int],
) -> None:
    """Cross-file checks against the source images (csv2sr.images.cross); ``web`` is the
    timeout and the retries of each DICOMweb request."""
    from csv2sr.images.cross import add_to_report, validate_against_images  # noqa: PLC0415
    from csv2sr.images.index import ImageIndex  # noqa: PLC0415
    from csv2sr.validate import ValidationError  # noqa: PLC0415

    if images is not None and url is not None:
        raise ValidationError("give --images or --images-url, not both")
    if images is not None:
        index = ImageIndex.from_folder(images)
    else:
        index = ImageIndex.from_dicomweb(str(url), timeout=web[0], attempts=web[1] + 1)
    srs = [Path(file.path) for file in report.files]
    add_to_report(report, validate_against_images(srs, index, image_root=images))


MAX_ROWS = 200
"""Detailed rows printed at most (the JSON and the per-file reports hold everything)."""

_VALUE = re.compile(r"<[^>]*>")


def _print_text(report: ValidationReport, threshold: Severity) -> None:
    _print_details(report, threshold)
    _print_kinds(report)
    _print_summary(report, threshold)


def _print_details(report: ValidationReport, threshold: Severity) -> None:
    """Findings that fail the run, file by file (at most MAX_ROWS rows)."""
    from rich.table import Table  # noqa: PLC0415

    rows = [
        (file.relative, finding)
        for file in report.files for finding in file.sorted_findings()
        if finding.severity.rank <= threshold.rank
    ]
    if not rows:
        return
    table = Table(title=f"Findings at or above {threshold.value}")
    for column in ("file", "severity", "source", "item / attribute", "message"):
        table.add_column(column, overflow="fold")
    for relative, finding in rows[:MAX_ROWS]:
        style = _STYLE[finding.severity.value]
        table.add_row(escape(relative), f"[{style}]{finding.severity.value}[/]",
                      finding.source.value, escape(finding.item or finding.attribute),
                      escape(finding.message))
    out.print(table)
    if len(rows) > MAX_ROWS:
        out.print(f"... and {len(rows) - MAX_ROWS} more (see --json or --report-dir)")


def _print_kinds(report: ValidationReport) -> None:
    """Errors and warnings grouped by kind (values in <...> removed), with counts."""
    from rich.table import Table  # noqa: PLC0415

    from csv2sr.validate.findings import Severity  # noqa: PLC0415

    kinds: dict[tuple[int, str, str], tuple[int, set[str]]] = {}
    for file in report.files:
        for finding in file.findings:
            if finding.severity is Severity.INFO:
                continue
            key = (finding.severity.rank, finding.source.value,
                   _VALUE.sub("<...>", finding.message))
            count, files = kinds.get(key, (0, set()))
            files.add(file.path)
            kinds[key] = (count + 1, files)
    if not kinds:
        return
    table = Table(title="Errors and warnings by kind")
    for column in ("severity", "source", "message", "count", "files"):
        table.add_column(column, overflow="fold",
                         justify="right" if column in ("count", "files") else "left")
    for (rank, source, message), (count, files) in sorted(kinds.items()):
        severity = list(Severity)[rank]
        table.add_row(f"[{_STYLE[severity.value]}]{severity.value}[/]", source, escape(message),
                      str(count), str(len(files)))
    out.print(table)


def _print_summary(report: ValidationReport, threshold: Severity) -> None:
    from rich.table import Table  # noqa: PLC0415

    from csv2sr.validate.findings import Severity, Source  # noqa: PLC0415

    summary = report.summary(threshold)
    table = Table(title="Summary")
    table.add_column("source")
    for severity in Severity:
        table.add_column(severity.value, justify="right")
    by_source = summary["by_source"]
    if not isinstance(by_source, dict):
        raise TypeError("summary['by_source'] must be a dict")
    for source in Source:
        version = report.tools.get(source.value)
        label = f"{source.value} {version}" if version else f"{source.value} (not run)"
        counts = by_source[source.value]
        table.add_row(label, *(str(counts[s.value]) for s in Severity))
    out.print(table)
    failed = summary["failed"]
    verdict = "[green]OK[/green]" if not failed else f"[red]{failed} file(s) failed[/red]"
    out.print(f"files: {summary['files']}  passed: {summary['passed']}  "
              f"skipped: {summary['skipped']}  fail on: {threshold.value}  {verdict}")
