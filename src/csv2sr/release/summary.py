"""The release summary: a release folder -> one ``<release>`` document.

Rows, collections, annotator status, rejected rows, validation findings of the PS3.3
A.35.2 IOD and PS3.16 TID 1500 checks as the validator reports them, UIDs, the round trip,
tool versions, stage timings and one entry per SR, which ``xslt/release-report.xsl`` turns
into ``index.html`` (:mod:`csv2sr.release.pages`).  Nothing here reads the clock: the same
files give the same bytes (the stage timings are the Makefile's measurements, read from
``OUT/stages``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import math
import re
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree

from csv2sr import __version__, tools
from csv2sr.profiles import Profile
from csv2sr.release.elements import element, set_attr, sub
from csv2sr.release.folder import (
    ReleaseError,
    page_relpath,
    read_csv_rows,
    read_source,
    read_stages,
    read_validation,
    release_relpath,
    severity_name,
)

__all__ = [
    "HISTOGRAM_BINS",
    "build_summary",
    "tool_versions",
]

log = logging.getLogger(__name__)


HISTOGRAM_BINS = 20
"""Bins of the length histograms, up to the 99th percentile; one more holds the rest."""


def tool_versions(
    validation: dict[str, Any] | None = None, extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """Every tool a release uses, with its version (``not installed`` when absent): this
    process's packages, dcsrdump, the validators the JSON names (``not run`` when it gives
    no version) and ``extra`` pairs given by the caller (the Makefile passes GNU make's)."""
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
    dcsrdump = tools.dicom3tools_version(tools.find_dcsrdump())
    versions.append(("dicom3tools dcsrdump", dcsrdump or "not installed"))
    for tool, version in sorted(((validation or {}).get("tools") or {}).items()):
        label = "dicom3tools dciodvfy" if tool == "dciodvfy" else str(tool)
        if label != "csv2sr":
            versions.append((label, str(version) if version else "not run"))
    versions.extend(extra)
    return versions


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
    node = sub(
        parent, "histogram", {"bin-width": _fmt(width), "bins": str(bins + 1),
                              "max-count": str(max(counts))},
    )
    for index, count in enumerate(counts):
        attrs = {"i": str(index), "lo": _fmt(index * width), "count": str(count)}
        if index < bins:
            attrs["hi"] = _fmt((index + 1) * width)
        sub(node, "bin", attrs)


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
    node = sub(parent, "collections", {"length-unit": "mm"})
    known = list(profile.collections)
    for anatomy in known + sorted(a for a in tallies if a not in profile.collections):
        tally = tallies.get(anatomy, _Tally())
        item = sub(
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
            sub(
                item,
                "lengths",
                n=str(len(tally.lengths)),
                min=_fmt(min(tally.lengths)),
                median=_fmt(statistics.median(tally.lengths)),
                max=_fmt(max(tally.lengths)),
            )
        _histogram(item, tally.lengths, width, bins)


def _statuses(parent: etree._Element, tallies: dict[str, _Tally]) -> None:
    node = sub(parent, "annotator-statuses")
    for status in sorted(tallies):
        tally = tallies[status]
        sub(
            node,
            "status",
            name=status,
            rows=str(tally.rows),
            converted=str(tally.converted),
            rejected=str(tally.rejected),
            annotators=str(len(tally.annotators)),
        )


def _rejected(parent: etree._Element, rejected: list[dict[str, str]]) -> None:
    node = sub(parent, "rejected", count=str(len(rejected)))
    for row in sorted(rejected, key=lambda r: int(r.get("line", "0") or 0)):
        item = sub(
            node,
            "row",
            line=row.get("line", ""),
            order=row.get("order", ""),
            id=row.get("_id", ""),
            anatomy=row.get("anatomy", ""),
            patient=row.get("patientID", ""),
        )
        sub(item, "reason", text=row.get("reason", ""))


@dataclass
class _Findings:
    by_file: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    flat: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    """(severity, source, relpath, item, attribute, message)."""


def _collect_findings(out: Path, validation: dict[str, Any] | None) -> _Findings:
    findings = _Findings()
    for entry in (validation or {}).get("files", []):
        relpath = release_relpath(out, str(entry.get("path", "")))
        findings.by_file.setdefault(relpath, Counter())
        for finding in entry.get("findings", []):
            severity = severity_name(finding.get("severity"))
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
    node = sub(parent, "validation", ran="yes" if validation is not None else "no")
    set_attr(node, "files", str(len(findings.by_file)))
    severities = Counter(f[0] for f in findings.flat)
    for severity in sorted(severities, key=lambda s: (_SEVERITY_ORDER.get(s, 9), s)):
        sub(node, "severity", name=severity, count=str(severities[severity]))
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    for severity, source, *_ in findings.flat:
        sources[source][severity] += 1
    for source in sorted(sources):
        sub(
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
        group = sub(
            node, "message", severity=severity, source=source, count=str(len(where)),
            files=str(len({w[0] for w in where})),
        )
        sub(group, "text", text=message)
        limit = len(where) if severity == "error" else 5
        for relpath, place, detail in sorted(where)[:limit]:
            sub(
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


def _files(
    parent: etree._Element,
    out: Path,
    converted: list[tuple[dict[str, str], dict[str, str]]],
    findings: _Findings,
) -> None:
    node = sub(parent, "files", count=str(len(converted)))
    for manifest, source in converted:
        relpath = manifest["path"]
        counts = findings.by_file.get(relpath, Counter())
        sub(
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

    node = sub(parent, "uids")
    for label, unique, values in (
        ("SOP Instance UID (new)", True,
         [m.get("sop_instance_uid", "") for m, _ in converted]),
        ("Tracking Unique Identifier (new)", True,
         [m.get("tracking_uid", "") for m, _ in converted]),
        ("Series Instance UID (new, one per SR)", True,
         [m.get("series_instance_uid", "") for m, _ in converted]),
        ("Study Instance UID (source)", False,
         [s.get("StudyInstanceUID", "") for _, s in converted]),
        ("SOP Instance UID (annotated image)", False,
         [s.get("instanceUID", "") for _, s in converted]),
    ):
        count, repeats = distinct(values)
        sub(
            node, "uid", kind=label, distinct=str(count), repeats=str(repeats),
            unique="yes" if unique else "no",
        )


def _roundtrip(
    parent: etree._Element,
    export_path: Path,
    converted: list[tuple[dict[str, str], dict[str, str]]],
) -> None:
    """Compare the exported table with the input on the cells an SR carries verbatim."""
    node = sub(parent, "roundtrip", ran="yes" if export_path.is_file() else "no")
    if not export_path.is_file():
        return
    exported = read_csv_rows(export_path)
    by_id = {row.get("_id", ""): row for row in exported}
    set_attr(node, "exported", str(len(exported)))
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
    set_attr(node, "matched", str(matched))
    set_attr(node, "compared-columns", " ".join(columns))
    for order, column, expected, found in mismatches[:50]:
        sub(node, "mismatch", order=order, column=column, csv=expected, sr=found)
    set_attr(node, "mismatches", str(len(mismatches)))


def build_summary(
    out: Path,
    csv_path: Path,
    *,
    profile: Profile,
    name: str,
    version: str,
    tools: Sequence[tuple[str, str]] = (),
) -> etree._Element:
    """The ``<release>`` summary of the release folder ``out`` made from ``csv_path``;
    ``tools`` adds (name, version) pairs to the tool list."""
    manifest_path = out / "manifest.csv"
    if not manifest_path.is_file():
        raise ReleaseError(f"{manifest_path}: no manifest (run the convert stage first)")
    if not csv_path.is_file():
        raise ReleaseError(f"{csv_path}: the input CSV is missing")
    manifest = read_csv_rows(manifest_path)
    source = read_source(csv_path)
    rejected = read_csv_rows(out / "rejected.csv")
    validation = read_validation(out / "validation.json")
    converted = [
        (m, source.get(int(m["line"]), {}))
        for m in manifest
        if m.get("status") == "converted" and m.get("line", "").isdigit()
    ]
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    root = element(
        "release", name=name, version=version, profile=profile.name, generator="csv2sr"
    )
    sub(root, "input", file=csv_path.name, sha256=digest, rows=str(len(source)))
    sub(
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
    listed = sub(root, "tools")
    for tool, tool_version in tool_versions(validation, tools):
        sub(listed, "tool", name=tool, version=tool_version)
    timings = sub(root, "timings")
    for stage, (status, seconds) in read_stages(out / "stages").items():
        sub(timings, "stage", name=stage, status=str(status), seconds=f"{seconds:.3f}")
    _files(root, out, converted, findings)
    return root
