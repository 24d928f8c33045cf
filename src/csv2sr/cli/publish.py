"""``csv2sr publish``: send a release to a DICOMweb server or a PACS, resumably.

Exit status: 0 every file confirmed (and found, with --verify); 1 a file failed, was not
sent or was not found, or the destination refused or stayed unreachable; 2 usage error.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from csv2sr.cli.app import app
from csv2sr.cli.common import (
    EXIT_DATA,
    EXIT_OK,
    EXIT_USAGE,
    Quiet,
    Verbose,
    err,
    out,
    progress_bar,
    setup_logging,
)
from csv2sr.errors import Interrupted

if TYPE_CHECKING:
    from csv2sr.publish import Credentials, Options, Outcome, Plan, PublishResult
    from csv2sr.publish.destination import Destination

_SECRET_HELP = "never on the command line"


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]usage error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def _print_outcome(outcome: Outcome) -> None:
    from csv2sr.publish import Status  # noqa: PLC0415

    label = "[red]error[/red]" if outcome.status is Status.FAILED else "[yellow]note[/yellow]"
    err.print(f"{label}: {escape(outcome.key)}: {escape(outcome.reason)}",
              highlight=False, soft_wrap=True)


def _quiet_libraries(verbose: int) -> None:
    """pynetdicom logs every rejected or aborted association as an error; csv2sr reports
    those itself, so its log is shown only with -vv."""
    logging.getLogger("pynetdicom").propagate = verbose >= 2


def _destination(
    url: str | None, dimse: str | None, aet: str, called_aet: str,
    credentials: Credentials | None, ca_bundle: Path | None, timeout: float,
) -> Destination:
    from csv2sr.publish import (  # noqa: PLC0415
        DicomwebDestination,
        DicomwebTarget,
        DimseDestination,
        DimseTarget,
        check_aet,
        parse_host_port,
        parse_url,
    )

    if (url is None) == (dimse is None):
        raise _usage("give one destination: --url URL (DICOMweb) or --dimse HOST:PORT")
    if url is not None:
        return DicomwebDestination(DicomwebTarget(
            parse_url(url), credentials=credentials, ca_bundle=ca_bundle, timeout=timeout,
        ))
    if credentials is not None or ca_bundle is not None:
        raise _usage("credentials and --ca-bundle are for --url; DIMSE uses AE titles")
    host, port = parse_host_port(dimse or "")
    return DimseDestination(DimseTarget(
        host, port, calling_aet=check_aet("--aet", aet),
        called_aet=check_aet("--called-aet", called_aet), timeout=timeout,
    ))


def _journal_dir(paths: list[Path], given: Path | None) -> Path:
    from csv2sr.publish import find_release_root  # noqa: PLC0415

    if given is not None:
        return given
    root = find_release_root(paths)
    if root is None:
        raise _usage(
            f"{paths[0]} is not inside a release folder (manifest.csv and sr/); "
            "give --journal-dir DIR"
        )
    return root / "publish"


@app.command("publish")
def publish_command(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH...", exists=True,
                       help="SR files, or folders searched recursively (OUT/sr)."),
    ],
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL",
                     help="DICOMweb root (STOW-RS, QIDO-RS), e.g. http://host:8042/dicom-web."),
    ] = None,
    dimse: Annotated[
        str | None,
        typer.Option("--dimse", metavar="HOST:PORT", help="A DICOM server (C-STORE, C-FIND)."),
    ] = None,
    aet: Annotated[str, typer.Option("--aet", metavar="NAME",
                                     help="Our (calling) AE title.")] = "CSV2SR",
    called_aet: Annotated[str, typer.Option("--called-aet", metavar="NAME",
                                            help="The server's (called) AE title.")] = "ANY-SCP",
    token_env: Annotated[str | None, typer.Option(
        "--token-env", metavar="VAR",
        help=f"Bearer token from this environment variable ({_SECRET_HELP}).")] = None,
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", metavar="FILE", dir_okay=False,
        help="Bearer token from this file.")] = None,
    basic_env: Annotated[str | None, typer.Option(
        "--basic-env", metavar="VAR",
        help="Basic auth user:password from this environment variable.")] = None,
    basic_file: Annotated[Path | None, typer.Option(
        "--basic-file", metavar="FILE", dir_okay=False,
        help="Basic auth user:password from this file (first line).")] = None,
    ca_bundle: Annotated[Path | None, typer.Option(
        "--ca-bundle", metavar="FILE", exists=True, dir_okay=False,
        help="CA certificates (PEM) to trust for https.")] = None,
    journal_dir: Annotated[Path | None, typer.Option(
        "--journal-dir", metavar="DIR", file_okay=False,
        help="Where the journal goes (default: OUT/publish of the release holding PATH).",
    )] = None,
    batch: Annotated[int, typer.Option(
        "--batch", min=1, help="Files per STOW-RS request, at most.")] = 50,
    batch_mib: Annotated[float, typer.Option(
        "--batch-mib", min=0.001, help="MiB per STOW-RS request, at most.")] = 16.0,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, max=64,
        help="Requests in flight (STOW-RS) or associations (C-STORE).")] = 4,
    retries: Annotated[int, typer.Option(
        "--retries", min=0, max=20,
        help="Retries of a request after a timeout, refused connection, 429 or 5xx.")] = 4,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, help="Seconds to wait for an answer.")] = 60.0,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Afterwards, look every file up (QIDO-RS or C-FIND).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List what would be sent; contact nothing, write nothing.")] = False,
    quiet: Quiet = False,
    verbose: Verbose = 0,
) -> None:
    """Send SRs to a DICOMweb server (STOW-RS) or a PACS (C-STORE), resumably.

    A journal next to the release (OUT/publish/<destination>.jsonl) records each file the
    server confirmed; a rerun sends only the rest, so an interrupted publish is resumed by
    running it again. Faults (timeouts, refused connections, 429, 5xx) are retried with
    backoff; a file the server refuses is reported with its reason and the rest go on.
    Credentials come from an environment variable or a file, never from the command line.

    Exit status: 0 every file confirmed (and found, with --verify); 1 a file failed or
    was not sent, or the server refused or stayed unreachable; 2 usage error.
    """
    setup_logging(verbose)
    _quiet_libraries(verbose)
    from csv2sr.publish import (  # noqa: PLC0415
        PublishUsageError,
        find_release_root,
        load_credentials,
        make_plan,
    )

    try:
        credentials = load_credentials(token_env=token_env, token_file=token_file,
                                       basic_env=basic_env, basic_file=basic_file)
        destination = _destination(url, dimse, aet, called_aet, credentials, ca_bundle, timeout)
        journal = _journal_dir(paths, journal_dir) / destination.journal_name()
        _need_libraries(url is not None)
        plan = make_plan(paths, find_release_root(paths))
    except PublishUsageError as exc:
        raise _usage(str(exc)) from None
    except (KeyboardInterrupt, Interrupted) as exc:
        err.print("[red]interrupted[/red] before anything was sent")
        raise typer.Exit(_interrupt_status(exc)) from None
    if dry_run:
        raise typer.Exit(_dry_run(plan, destination, journal))
    options = _options(batch, batch_mib, concurrency, retries, verify)
    result = _run(plan, destination, journal, options, quiet=quiet)
    _report(result, quiet=quiet)
    if result.interrupted:
        raise typer.Exit(result.interrupt_status)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_DATA)


def _interrupt_status(exc: BaseException) -> int:
    """128 + the signal number (130 for Ctrl-C, 143 for SIGTERM), as every command."""
    return exc.exit_status if isinstance(exc, Interrupted) else 130


def _need_libraries(dicomweb: bool) -> None:
    from csv2sr.publish import PublishUsageError  # noqa: PLC0415

    names = ("requests", "dicomweb_client") if dicomweb else ("pynetdicom",)
    for name in names:
        try:
            __import__(name)
        except ImportError:
            raise PublishUsageError(
                name, "not installed: pip install 'csv2sr[publish]'"
            ) from None


def _options(batch: int, batch_mib: float, concurrency: int, retries: int,
             verify: bool) -> Options:
    from csv2sr.publish import Options  # noqa: PLC0415

    return Options(batch_files=batch, batch_bytes=max(1, int(batch_mib * (1 << 20))),
                   concurrency=concurrency, attempts=retries + 1, verify=verify)


def _run(plan: Plan, destination: Destination, journal: Path, options: Options, *,
         quiet: bool) -> PublishResult:
    from csv2sr.publish import DestinationError, publish  # noqa: PLC0415

    total = len(plan.items) + len(plan.failures)
    try:
        with progress_bar("Publishing", total, enabled=not quiet) as advance:
            return publish(plan, destination, journal, options,
                           progress=lambda done, _total: advance(done),
                           on_outcome=_print_outcome)
    except DestinationError as exc:  # the journal could not be opened or locked
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_DATA) from None
    except (KeyboardInterrupt, Interrupted) as exc:  # outside the sending loop
        err.print("[red]interrupted[/red]: run the same command again to resume",
                  highlight=False)
        raise typer.Exit(_interrupt_status(exc)) from None


def _dry_run(plan: Plan, destination: Destination, journal: Path) -> int:
    from csv2sr.publish import dry_run  # noqa: PLC0415

    to_send, confirmed = dry_run(plan, journal)
    for item in to_send:
        out.print(f"send {escape(item.key)} {item.sop_instance_uid}", highlight=False,
                  soft_wrap=True)
    for item, record in confirmed:
        out.print(f"already there {escape(item.key)} {item.sop_instance_uid} "
                  f"(confirmed {record.time})", highlight=False, soft_wrap=True)
    for failure in plan.failures:
        _print_outcome(failure)
    out.print(
        f"dry run: {len(to_send)} to send, {len(confirmed)} already there, "
        f"{len(plan.failures)} cannot be sent -> {escape(destination.display)} "
        f"(journal {escape(os.fspath(journal))})",
        highlight=False, soft_wrap=True,
    )
    return EXIT_OK if not plan.failures else EXIT_DATA


def _report(result: PublishResult, *, quiet: bool) -> None:
    if result.stopped:
        err.print(f"[red]error:[/red] {escape(result.stopped)}", highlight=False,
                  soft_wrap=True)
    if result.interrupted:
        err.print("[red]interrupted[/red]", highlight=False)
    if result.not_sent:
        err.print(f"{result.not_sent} file(s) not sent: run the same command again to resume",
                  highlight=False, soft_wrap=True)
    if quiet:
        return
    colour = "green" if result.ok else "yellow"
    out.print(
        f"[{colour}]sent {result.sent}, already there {result.already}, "
        f"failed {result.failed}[/{colour}]"
        + (f", not sent {result.not_sent}" if result.not_sent else "")
        + f" of {result.total} in {result.seconds:.1f} s ({result.rate:.1f} files/s) -> "
        f"{escape(result.destination)}"
        + (f" ({result.associations} association(s))" if result.associations else ""),
        highlight=False, soft_wrap=True,
    )
    if result.verified is not None:
        out.print(f"verified {result.verified}, missing {len(result.missing)}",
                  highlight=False, soft_wrap=True)
    if result.journal is not None:
        out.print(f"journal {escape(os.fspath(result.journal))}", highlight=False, soft_wrap=True)
