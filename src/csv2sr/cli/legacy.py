"""``csv2sr sr-xml``, ``csv2sr xslt``, ``csv2sr json``: drop-ins for a pixelmed/XSLT pipeline.

Heavy modules (pydicom, lxml, saxonche) are imported inside the commands, so that
``csv2sr --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

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

sr_xml_app = typer.Typer(
    help="pixelmed's SR XML <-> DICOM, without a JVM (see docs/sr-xml.md).",
    no_args_is_help=True,
)
json_app = typer.Typer(
    help="The DICOM JSON Model (PS3.18 F.2) <-> DICOM, decimal strings kept as written.",
    no_args_is_help=True,
)
app.add_typer(sr_xml_app, name="sr-xml")
app.add_typer(json_app, name="json")

Inputs = Annotated[
    list[Path],
    typer.Argument(metavar="IN...", exists=True,
                   help="Files, or folders searched recursively (relative paths kept)."),
]
OutDir = Annotated[
    Path,
    typer.Option("--output", "-o", metavar="OUTDIR", file_okay=False,
                 help="The folder to write into (created; files written atomically)."),
]


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]usage error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def _error(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def _run(inputs: list[Path], outdir: Path, suffix: str, patterns: tuple[str, ...],
         convert: Callable[[Path], bytes], what: str, quiet: bool, jobs: int | None) -> None:
    from csv2sr.formats.filemap import OutputCollisionError, plan_outputs, run_files  # noqa: PLC0415

    try:
        plan = plan_outputs(inputs, outdir, suffix, patterns)
    except OutputCollisionError as exc:
        raise _usage(str(exc)) from None
    if not plan:
        raise _usage("no input files (" + ", ".join(patterns) + ") in "
                     + ", ".join(os.fspath(p) for p in inputs))
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _usage(f"cannot create {outdir}: {exc.strerror or exc}") from None
    with progress_bar(what, len(plan), enabled=not quiet) as advance:
        outcomes = run_files(plan, outdir, convert, progress=advance,
                             jobs=jobs or os.cpu_count() or 1)
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:
        _error(str(outcome.error))
    if not quiet:
        colour = "yellow" if failed else "green"
        out.print(f"[{colour}]{len(outcomes) - len(failed)} of {len(outcomes)} files "
                  f"written[/{colour}], {len(failed)} failed -> {escape(os.fspath(outdir))}",
                  highlight=False)
    raise typer.Exit(EXIT_DATA if failed else EXIT_OK)


@sr_xml_app.command("to-dicom")
def sr_xml_to_dicom(
    inputs: Inputs,
    outdir: OutDir,
    pixelmed_compatible: Annotated[
        bool,
        typer.Option("--pixelmed-compatible",
                     help="pixelmed's File Meta and sequence encoding: the bytes pixelmed's "
                          "toDICOM writes."),
    ] = False,
    jobs: Jobs = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
) -> None:
    """SR XML files -> DICOM SR files (OUTDIR/NAME.dcm), the dataset pixelmed's toDICOM makes.

    Where pixelmed would drop, repeat or garble part of the input, or write an empty file,
    the file is refused with FILE: ELEMENT (line N): why, and nothing is written for it.

    Exit status: 0 every file written; 1 a file was refused; 2 usage error.
    """
    setup_logging(verbose)
    from csv2sr.formats.srxml.files import xml_file_to_dicom  # noqa: PLC0415

    _run(inputs, outdir, ".dcm", ("*.xml",),
         functools.partial(xml_file_to_dicom, pixelmed_compatible=pixelmed_compatible),
         "SR XML -> DICOM", quiet, jobs)


@sr_xml_app.command("to-xml")
def sr_xml_to_xml(inputs: Inputs, outdir: OutDir, jobs: Jobs = None, quiet: Quiet = False,
                  verbose: Verbose = 0) -> None:
    """DICOM SR files -> SR XML files (OUTDIR/NAME.xml), laid out as pixelmed's toXML.

    What the format cannot carry (binary values, a second frame number, attributes a
    content item has no place for, ...) refuses the file instead of dropping it.

    Exit status: 0 every file written; 1 a file was refused; 2 usage error.
    """
    setup_logging(verbose)
    from csv2sr.formats.srxml.files import dicom_file_to_xml  # noqa: PLC0415

    _run(inputs, outdir, ".xml", ("*.dcm",), dicom_file_to_xml, "DICOM -> SR XML", quiet, jobs)


@json_app.command("to-dicom")
def json_to_dicom(inputs: Inputs, outdir: OutDir, jobs: Jobs = None, quiet: Quiet = False,
                  verbose: Verbose = 0) -> None:
    """DICOM JSON files -> DICOM files (OUTDIR/NAME.dcm, csv2sr's File Meta).

    Exit status: 0 every file written; 1 a file could not be converted; 2 usage error.
    """
    setup_logging(verbose)
    from csv2sr.formats.dicomjson import json_file_to_dicom  # noqa: PLC0415

    _run(inputs, outdir, ".dcm", ("*.json",), json_file_to_dicom, "JSON -> DICOM", quiet,
         jobs)


@json_app.command("to-json")
def json_to_json(inputs: Inputs, outdir: OutDir, jobs: Jobs = None, quiet: Quiet = False,
                 verbose: Verbose = 0) -> None:
    """DICOM files -> DICOM JSON files (OUTDIR/NAME.json), DS and IS values as written.

    Exit status: 0 every file written; 1 a file could not be converted; 2 usage error.
    """
    setup_logging(verbose)
    from csv2sr.formats.dicomjson import dicom_file_to_json  # noqa: PLC0415

    _run(inputs, outdir, ".json", ("*.dcm",), dicom_file_to_json, "DICOM -> JSON", quiet,
         jobs)


class EngineName(str, Enum):
    """Which XSLT processor runs the stylesheet."""

    auto = "auto"
    lxml = "lxml"
    saxon = "saxon"


def _params(given: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for entry in given:
        name, sep, value = entry.partition("=")
        if not sep or not name:
            raise _usage(f"--param {entry!r}: expected NAME=VALUE")
        params[name] = value
    return params


@app.command("xslt")
def xslt_command(
    stylesheet: Annotated[
        Path, typer.Argument(metavar="STYLESHEET", exists=True, dir_okay=False,
                             help="An XSLT 1.0, 2.0 or 3.0 stylesheet."),
    ],
    inputs: Inputs,
    outdir: OutDir,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="NAME=VALUE",
                     help="A stylesheet parameter, as a string (repeatable)."),
    ] = None,
    engine: Annotated[
        EngineName,
        typer.Option("--engine", help="auto: lxml for XSLT 1.0, SaxonC-HE for 2.0 and 3.0."),
    ] = EngineName.auto,
    suffix: Annotated[
        str, typer.Option("--suffix", help="Suffix of each input's principal result."),
    ] = ".xml",
    findings: Annotated[
        Path | None,
        typer.Option("--json", metavar="FINDINGS.json", dir_okay=False,
                     help="Write every xsl:message and failure as JSON."),
    ] = None,
    fail_on_message: Annotated[
        bool, typer.Option("--fail-on-message", help="Exit 1 when any xsl:message is given."),
    ] = False,
    quiet: Quiet = False,
    verbose: Verbose = 0,
) -> None:
    """Run STYLESHEET over every input in one process, compiled once.

    Inputs are XML files, or CSV/TSV tables (.csv, .tsv, .tab) given to the stylesheet in
    csv2sr's row/column XML form (docs/sr-xml.md).  Each input's principal result goes to
    OUTDIR/NAME.xml and each xsl:result-document to OUTDIR/HREF (never outside OUTDIR).
    Every xsl:message is reported as FILE: xsl:message: TEXT.  XSLT 2.0/3.0 needs
    SaxonC-HE: pip install 'csv2sr[xslt2]'.

    Exit status: 0 every input transformed; 1 an input failed (or sent a message, with
    --fail-on-message); 2 usage error (also: the stylesheet cannot be compiled).
    """
    setup_logging(verbose)
    from csv2sr.atomic import write_atomic  # noqa: PLC0415
    from csv2sr.formats.filemap import OutputCollisionError, plan_outputs  # noqa: PLC0415
    from csv2sr.formats.xslt import StylesheetError, compile_stylesheet, transform_files  # noqa: PLC0415

    params = _params(param or [])
    try:
        compiled = compile_stylesheet(stylesheet, params, engine.value)
        plan = plan_outputs(inputs, outdir, suffix, ("*.xml", "*.csv", "*.tsv", "*.tab"))
    except (StylesheetError, OutputCollisionError) as exc:
        raise _usage(str(exc)) from None
    if not plan:
        raise _usage("no input files in " + ", ".join(os.fspath(p) for p in inputs))
    outdir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, object]] = []
    failed = messages = 0
    with progress_bar("XSLT", len(plan), enabled=not quiet) as advance:
        for done, run in enumerate(transform_files(compiled, plan, outdir), 1):
            for message in run.messages:
                messages += 1
                err.print(f"[yellow]{escape(str(message))}[/yellow]", highlight=False,
                          soft_wrap=True)
                records.append({"source": os.fspath(message.source), "kind": "xsl:message",
                                "terminate": message.terminate, "message": message.text})
            if run.error:
                failed += 1
                _error(run.error)
                records.append({"source": os.fspath(run.source), "kind": "error",
                                "terminate": True, "message": run.error})
            advance(done)
    if findings is not None:
        write_atomic(findings, (json.dumps(records, indent=2, ensure_ascii=False) + "\n")
                     .encode("utf-8"))
    if not quiet:
        colour = "yellow" if failed else "green"
        out.print(f"[{colour}]{len(plan) - failed} of {len(plan)} inputs transformed"
                  f"[/{colour}] by {compiled.name}, {messages} messages, {failed} failed -> "
                  f"{escape(os.fspath(outdir))}", highlight=False)
    raise typer.Exit(EXIT_DATA if failed or (fail_on_message and messages) else EXIT_OK)
