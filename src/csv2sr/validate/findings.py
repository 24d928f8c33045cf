"""Findings: what a validator says of one file, and the report of a whole run.

Every finding names the file it belongs to (through its :class:`FileReport`), a severity
(error, warning, info), the source that produced it (csv2sr's own checks, dciodvfy or
pixelmed), the content item id (``1.5.1.4``, root = ``1``, PS3.3 C.17.3 tree order) or
``""`` for header attributes, an attribute path and a message (:mod:`csv2sr.dicom.paths`).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

from csv2sr.dicom.tree import sort_key

__all__ = [
    "FileReport",
    "Finding",
    "Severity",
    "SkippedFile",
    "Source",
    "ValidationReport",
]


class Severity(str, enum.Enum):
    """How bad a finding is; ``rank`` orders them, most severe first."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


class Source(str, enum.Enum):
    """Which validator produced a finding."""

    CSV2SR = "csv2sr"
    DCIODVFY = "dciodvfy"
    PIXELMED = "pixelmed"
    DCENTVFY = "dcentvfy"


@dataclass(frozen=True)
class Finding:
    """One thing a validator says about one file."""

    severity: Severity
    source: Source
    item: str
    """Content item id (``1.5.1.4``; root ``1``) or ``""`` when not in the content tree."""
    attribute: str
    """Attribute path (``/ContentSequence(0040,a730)[5]/...``) or ``""``."""
    message: str
    transient: bool = field(default=False, compare=False)
    """Said of this run rather than of the file (a validator timed out, could not be
    started, or its worker died): a file with such a finding is checked again next time,
    never taken from a cache (:mod:`csv2sr.cache`)."""

    def as_dict(self) -> dict[str, str]:
        return {
            "severity": self.severity.value,
            "source": self.source.value,
            "item": self.item,
            "attribute": self.attribute,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Finding:
        """The finding :meth:`as_dict` gave (``ValueError``/``KeyError`` for another)."""
        return cls(Severity(data["severity"]), Source(data["source"]), str(data["item"]),
                   str(data["attribute"]), str(data["message"]))

    def sort_key(self) -> tuple[str, int, tuple[int, ...], str, str]:
        return (
            self.source.value,
            self.severity.rank,
            sort_key(self.item),
            self.attribute,
            self.message,
        )


@dataclass
class FileReport:
    """All findings on one file."""

    path: str
    """The file as it was found (the PATH argument joined with the walk)."""
    relative: str
    """Its path relative to the PATH argument it came from (the file name for a file)."""
    findings: list[Finding] = field(default_factory=list)

    def count(self, severity: Severity, source: Source | None = None) -> int:
        return sum(
            1 for f in self.findings
            if f.severity is severity and (source is None or f.source is source)
        )

    @property
    def passed(self) -> bool:
        """No error from any source."""
        return self.count(Severity.ERROR) == 0

    def reaches(self, fail_on: Severity) -> bool:
        """True when a finding is at least as severe as ``fail_on``."""
        return any(f.severity.rank <= fail_on.rank for f in self.findings)

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=Finding.sort_key)


@dataclass(frozen=True)
class SkippedFile:
    """An entry of a folder walk that was not validated, and why (not a failure).

    A file that is not DICOM (no ``DICM`` and not named ``*.dcm``: a convert folder's
    ``manifest.csv``), a hidden entry, or a second link to a folder already walked.
    """

    path: str
    relative: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "relative": self.relative, "reason": self.reason}


@dataclass
class ValidationReport:
    """The result of :func:`csv2sr.validate.validate_files`."""

    files: list[FileReport]
    tools: dict[str, str | None]
    """Validator versions: ``csv2sr``, ``dciodvfy`` and ``pixelmed`` (None: not run)."""
    notes: list[str] = field(default_factory=list)
    """Run-wide remarks, e.g. that dciodvfy is not installed (said once, not a failure)."""
    skipped: list[SkippedFile] = field(default_factory=list)
    """Entries of folder walks that were not validated (listed in every report format)."""

    def relative_to(self, base: str | os.PathLike[str]) -> ValidationReport:
        """The same report with every file's path relative to ``base`` (``sr/P/x.dcm`` in
        a release), so that what is written of it does not depend on where the folder
        is; a path outside ``base`` becomes ``../...``."""
        start = os.path.abspath(base)

        def rel(path: str) -> str:
            return Path(os.path.relpath(os.path.abspath(path), start)).as_posix()

        return ValidationReport(
            [FileReport(rel(f.path), f.relative, list(f.findings)) for f in self.files],
            dict(self.tools), list(self.notes),
            [SkippedFile(rel(s.path), s.relative, s.reason) for s in self.skipped],
        )

    def failed(self, fail_on: Severity = Severity.ERROR) -> list[FileReport]:
        return [f for f in self.files if f.reaches(fail_on)]

    def ok(self, fail_on: Severity = Severity.ERROR) -> bool:
        return not self.failed(fail_on)

    def summary(self, fail_on: Severity = Severity.ERROR) -> dict[str, object]:
        """Counts per severity and per source (the JSON ``summary`` object)."""
        by_source: dict[str, dict[str, int]] = {
            source.value: {sev.value: 0 for sev in Severity} for source in Source
        }
        for report in self.files:
            for finding in report.findings:
                by_source[finding.source.value][finding.severity.value] += 1
        by_severity = {
            sev.value: sum(counts[sev.value] for counts in by_source.values())
            for sev in Severity
        }
        return {
            "files": len(self.files),
            "skipped": len(self.skipped),
            "passed": sum(1 for f in self.files if f.passed),
            "failed": len(self.failed(fail_on)),
            "fail_on": fail_on.value,
            "by_severity": by_severity,
            "by_source": by_source,
        }
