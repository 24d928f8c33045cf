"""Writers: per-file text reports, JSON and JUnit XML; every file written atomically.

All output is deterministic: findings sorted (source, severity, item id, attribute,
message), no timestamps, paths as given.  The JSON schema is documented in
docs/validation.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from lxml import etree

from csv2sr.validate.findings import FileReport, Severity, ValidationReport

__all__ = [
    "file_report_text",
    "report_name",
    "to_json",
    "to_junit",
    "write_atomic",
    "write_report_dir",
]


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a temporary file in ``path``'s folder, then ``os.replace`` it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def write_report_dir(report: ValidationReport, folder: Path) -> list[Path]:
    """One text report per input file under ``folder``, named after its relative path."""
    written = []
    for file in report.files:
        target = folder / report_name(file.relative)
        write_atomic(target, file_report_text(file, report.tools))
        written.append(target)
    return written


def to_json(report: ValidationReport, fail_on: Severity = Severity.ERROR) -> str:
    """The JSON document of docs/validation.md (files, summary, tools, notes)."""
    document = {
        "files": [
            {
                "path": file.path,
                "relative": file.relative,
                "passed": file.passed,
                "findings": [f.as_dict() for f in file.sorted_findings()],
            }
            for file in report.files
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
