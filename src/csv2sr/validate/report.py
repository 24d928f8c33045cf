"""Writers: per-file text reports, JSON and JUnit XML; every file written atomically.

All output is deterministic: findings sorted (source, severity, item id, attribute,
message), no timestamps, paths as given.  The JSON schema is documented in
docs/validation.md.  Files are written by :func:`csv2sr.atomic.write_atomic` (temporary
file, rename, mode 0666 less the umask); the reports of ``--report-dir`` never through a
symbolic link inside that folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

from lxml import etree

from csv2sr.atomic import prune, write_atomic
from csv2sr.validate.findings import FileReport, Severity, ValidationReport

__all__ = [
    "file_report_text",
    "report_name",
    "report_names",
    "to_json",
    "to_junit",
    "write_atomic",
    "write_report_dir",
]


def _line(severity: str, source: str, item: str, attribute: str, message: str) -> str:
    where = " ".join(part for part in (item and f"[{item}]", attribute) if part)
    return f"{severity.upper():7} {source:8} {where + ' - ' if where else ''}{message}"


def file_report_text(report: FileReport, tools: dict[str, str | None]) -> str:
    """One file's report, as the original Makefile's per-file reports, but classified."""
    checked = ", ".join(f"{name} {version}" for name, version in tools.items() if version)
    counts = ", ".join(f"{report.count(sev)} {sev.value}" for sev in Severity)
    lines = [
        f"File: {report.relative}",
        f"Checked by: {checked}",
        f"Result: {'PASS' if report.passed else 'FAIL'} ({counts})",
        "",
    ]
    lines.extend(
        _line(f.severity.value, f.source.value, f.item, f.attribute, f.message)
        for f in report.sorted_findings()
    )
    return "\n".join(lines) + "\n"


def report_name(relative: str) -> str:
    """``TCGA-BP-4343/order-0001.dcm`` -> ``TCGA-BP-4343/order-0001.txt``."""
    if relative.lower().endswith(".dcm"):
        return relative[:-4] + ".txt"
    return relative + ".txt"


def _hashed(name: str, path: str) -> str:
    """``P/x.txt`` -> ``P/x-<8 hex of the input path's SHA-256>.txt``."""
    pure = PurePosixPath(name)
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return pure.with_name(f"{pure.stem}-{digest}{pure.suffix}").as_posix()


def report_names(files: list[FileReport]) -> list[str]:
    """One report name per input file, unique and stable (the same inputs, the same names).

    A file's report is named after its path relative to its PATH argument
    (:func:`report_name`).  Names that would clash (two inputs of the same name from two
    arguments, ``x.dcm`` next to ``x``, names differing only in case, which a
    case-insensitive file system would merge, or a report name that is another report's
    folder) get 8 hex digits of the SHA-256 of the input's path as given:
    ``order-0001-1f2e3d4c.txt``.
    """
    names = [report_name(file.relative) for file in files]
    folded = [name.casefold() for name in names]
    count: dict[str, int] = {}
    for name in folded:
        count[name] = count.get(name, 0) + 1
    folders = {
        PurePosixPath(*PurePosixPath(name).parts[:depth]).as_posix()
        for name in folded for depth in range(1, len(PurePosixPath(name).parts))
    }
    unique = [
        _hashed(name, file.path) if count[key] > 1 or key in folders else name
        for name, key, file in zip(names, folded, files, strict=True)
    ]
    used: set[str] = set()
    for index, name in enumerate(unique):  # the same path given twice: number the copies
        candidate, copy = name, 1
        while candidate.casefold() in used:
            copy += 1
            pure = PurePosixPath(name)
            candidate = pure.with_name(f"{pure.stem}~{copy}{pure.suffix}").as_posix()
        used.add(candidate.casefold())
        unique[index] = candidate
    return unique


def write_report_dir(report: ValidationReport, folder: Path) -> list[Path]:
    """One text report per input file under ``folder`` (names: :func:`report_names`),
    written atomically and never through a symbolic link inside ``folder``; a report that
    already says the same is left as it is (its time too), and the ``*.txt`` reports an
    earlier run left for files not validated now are removed
    (:func:`csv2sr.atomic.prune`), so that ``folder`` holds the reports of this run."""
    written = []
    for file, name in zip(report.files, report_names(report.files), strict=True):
        target = folder / name
        write_atomic(target, file_report_text(file, report.tools), root=folder, durable=False,
                     keep_same=True)
        written.append(target)
    prune(folder, {target.relative_to(folder).as_posix() for target in written}, ".txt")
    return written


def to_json(report: ValidationReport, fail_on: Severity = Severity.ERROR) -> str:
    """The JSON document of docs/validation.md (files, summary, tools, notes)."""
    document = {
        "files": [
            {
                "path": file.path,
                "relative": file.relative,
                "report": name,
                "passed": file.passed,
                "findings": [f.as_dict() for f in file.sorted_findings()],
            }
            for file, name in zip(report.files, report_names(report.files), strict=True)
        ],
        "skipped": [s.as_dict() for s in report.skipped],
        "summary": report.summary(fail_on),
        "tools": report.tools,
        "notes": report.notes,
    }
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def to_junit(report: ValidationReport, fail_on: Severity = Severity.ERROR) -> bytes:
    """JUnit XML: one test case per file, failing when a finding reaches ``fail_on``."""
    failed = report.failed(fail_on)
    suites = etree.Element("testsuites", name="csv2sr validate")
    suite = etree.SubElement(
        suites, "testsuite", name="csv2sr validate",
        tests=str(len(report.files) + len(report.skipped)),
        failures=str(len(failed)), errors="0", skipped=str(len(report.skipped)),
    )
    properties = etree.SubElement(suite, "properties")
    for name, version in report.tools.items():
        etree.SubElement(properties, "property", name=name, value=version or "not run")
    for file in report.files:
        case = etree.SubElement(suite, "testcase", classname="csv2sr.validate",
                                name=file.path)
        reaching = [f for f in file.sorted_findings() if f.severity.rank <= fail_on.rank]
        if reaching:
            failure = etree.SubElement(
                case, "failure", type=fail_on.value,
                message=f"{len(reaching)} finding(s) at or above {fail_on.value}",
            )
            failure.text = "\n".join(
                _line(f.severity.value, f.source.value, f.item, f.attribute, f.message)
                for f in reaching
            )
        others = [f for f in file.sorted_findings() if f.severity.rank > fail_on.rank]
        if others:
            out = etree.SubElement(case, "system-out")
            out.text = "\n".join(
                _line(f.severity.value, f.source.value, f.item, f.attribute, f.message)
                for f in others
            )
    for skipped in report.skipped:
        case = etree.SubElement(suite, "testcase", classname="csv2sr.validate",
                                name=skipped.path)
        etree.SubElement(case, "skipped", message=skipped.reason)
    return bytes(etree.tostring(suites, xml_declaration=True, encoding="UTF-8",
                                pretty_print=True))
