"""The release summary: a release folder -> one ``<release>`` document.

Rows, the profile's tallies (rows per value of its ``report.tally`` columns, with the
histograms of its first measurement's values), rejected rows, validation findings of the PS3.3
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
import os
import re
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from lxml import etree

from csv2sr import __version__, tools
from csv2sr.mapping.spec import Source, Spec
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


def _number(row: dict[str, str], column: str) -> float | None:
    try:
        value = float(row.get(column, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _first_column(spec: Spec, role: str) -> str:
    source = {"patient": spec.identity.patient_id, "observer": spec.observer.name}[role]
    return source.columns[0] if source is not None and source.columns else ""


@dataclass
class _Tally:
    rows: int = 0
    converted: int = 0
    rejected: int = 0
    patients: set[str] = field(default_factory=set)
    observers: set[str] = field(default_factory=set)
    values: list[float] = field(default_factory=list)


def _tally(
    converted: Iterable[dict[str, str]], rejected: Iterable[dict[str, str]], column: str,
    spec: Spec,
) -> dict[str, _Tally]:
    patient = _first_column(spec, "patient")
    observer = _first_column(spec, "observer")
    value_column = spec.value_column
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for rows, done in ((converted, True), (rejected, False)):
        for row in rows:
            tally = tallies[row.get(column, "") or "(empty)"]
            tally.rows += 1
            if done:
                tally.converted += 1
                tally.patients.add(row.get(patient, ""))
                value = _number(row, value_column) if value_column else None
                if value is not None:
                    tally.values.append(value)
            else:
                tally.rejected += 1
            tally.observers.add(row.get(observer, ""))
    return tallies


def _known_values(spec: Spec, column: str) -> list[str]:
    """The values a tally lists even with no row: its labels', else its enumeration's."""
    labels = spec.report.labels.get(column, {})
    return list(labels) or list(spec.cells[column].values)


def _tallies(
    parent: etree._Element, spec: Spec, converted: list[dict[str, str]],
    rejected: list[dict[str, str]],
) -> None:
    """Rows per value of each ``report.tally`` column; the first tally also gets the
    histograms of the first measurement's values (its column and unit)."""
    node = sub(parent, "tallies", {"value-column": spec.value_column,
                                   "unit": spec.value_unit})
    width = bins = 0.0
    for index, column in enumerate(spec.report.tally):
        tallies = _tally(converted, rejected, column, spec)
        histograms = index == 0 and bool(spec.value_column)
        if histograms:
            everything = sorted(v for t in tallies.values() for v in t.values)
            p99 = everything[int(0.99 * (len(everything) - 1))] if everything else 1.0
            width = _nice_width(p99, HISTOGRAM_BINS)
            bins = max(1, math.ceil(p99 / width))
        item = sub(node, "tally", column=column, histograms="yes" if histograms else "no")
        labels = spec.report.labels.get(column, {})
        known = _known_values(spec, column)
        for value in known + sorted(v for v in tallies if v not in known):
            tally = tallies.get(value, _Tally())
            entry = sub(item, "value", {
                "name": value,
                "label": labels.get(value, "" if not labels else "(not a label of the profile)"),
                "rows": str(tally.rows), "converted": str(tally.converted),
                "rejected": str(tally.rejected), "patients": str(len(tally.patients)),
                "observers": str(len(tally.observers)),
            })
            if not histograms:
                continue
            if tally.values:
                sub(entry, "values", n=str(len(tally.values)), min=_fmt(min(tally.values)),
                    median=_fmt(statistics.median(tally.values)), max=_fmt(max(tally.values)))
            _histogram(entry, tally.values, width, int(bins))


def _key(spec: Spec, row: dict[str, str]) -> str:
    """A row's name: its unique columns' cells (the manifest's), joined."""
    return " / ".join(row.get(c, "") for c in spec.unique_columns)


def _rejected(parent: etree._Element, spec: Spec, rejected: list[dict[str, str]]) -> None:
    node = sub(parent, "rejected", count=str(len(rejected)),
               key=" / ".join(spec.unique_columns))
    patient = _first_column(spec, "patient")
    for row in sorted(rejected, key=lambda r: int(r.get("line", "0") or 0)):
        item = sub(node, "row", line=row.get("line", ""), key=_key(spec, row),
                   patient=row.get(patient, ""))
        for column in spec.report.tally[:1]:
            sub(item, "cell", name=column, value=row.get(column, ""))
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
    if not relpath.startswith("sr/") and PurePosixPath(relpath).parts[:1] != ("sr",):
        return ""
    return _beside(out, "reports", relpath)


def _dump_link(out: Path, relpath: str) -> str:
    """The SR's dcsrdump text, relative to ``report/`` (or empty)."""
    return _beside(out, "dumps", relpath)


def _beside(out: Path, folder: str, relpath: str) -> str:
    """``../FOLDER/P/NAME.txt`` for ``sr/P/NAME.dcm`` when that file is there, else empty.
    A plain ``sr/P/NAME.dcm`` (every path csv2sr writes) is taken apart with string
    operations, two per SR of a release; any other path as ``PurePosixPath`` does."""
    parts = relpath.split("/")
    name = parts[-1]
    dot = name.rfind(".")
    if parts[0] == "sr" and len(parts) > 2 and all(p not in ("", ".") for p in parts) \
            and 0 < dot < len(name) - 1:
        target = "/".join((folder, *parts[1:-1], name[:dot] + ".txt"))
    else:
        target = str(PurePosixPath(folder, *PurePosixPath(relpath).parts[1:]).with_suffix(".txt"))
    return f"../{target}" if os.path.isfile(os.path.join(out, target)) else ""


def _files(
    parent: etree._Element,
    out: Path,
    spec: Spec,
    converted: list[tuple[dict[str, str], dict[str, str]]],
    findings: _Findings,
) -> None:
    """One entry per SR file (its first row names it; a grouped SR lists its rows)."""
    node = sub(parent, "files", count=str(len({m["path"] for m, _ in converted})),
               key=" / ".join(spec.unique_columns), **{"value-column": spec.value_column})
    patient = _first_column(spec, "patient")
    entries: dict[str, etree._Element] = {}
    for manifest, source in converted:
        relpath = manifest["path"]
        if relpath in entries:
            set_attr(entries[relpath], "rows", str(int(entries[relpath].get("rows", "1")) + 1))
            continue
        counts = findings.by_file.get(relpath, Counter())
        entry = entries[relpath] = sub(
            node,
            "file",
            {
                "path": relpath,
                "line": manifest.get("line", ""),
                "key": _key(spec, manifest),
                "rows": "1",
                "patient": source.get(patient, ""),
                "value": source.get(spec.value_column, "") if spec.value_column else "",
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
        for column in spec.report.tally[:1]:
            sub(entry, "cell", name=column, value=source.get(column, ""))


def _uids(
    parent: etree._Element, spec: Spec,
    converted: list[tuple[dict[str, str], dict[str, str]]],
) -> None:
    def distinct(values: list[str]) -> tuple[int, int]:
        counted = Counter(v for v in values if v)
        return len(counted), sum(n - 1 for n in counted.values() if n > 1)

    def column(source: Source | None) -> str:
        return source.column if source is not None else ""

    study = column(spec.identity.study_uid)
    image = column(spec.identity.sop_instance_uid)
    files = {m.get("path", ""): m for m, _ in converted}
    layout = "one per study" if spec.document.series == "study" else "one per SR"
    node = sub(parent, "uids")
    for label, unique, values in (
        ("SOP Instance UID (new)", True,
         [m.get("sop_instance_uid", "") for m in files.values()]),
        ("Tracking Unique Identifier (new)", True,
         [u for m, _ in converted for u in m.get("tracking_uid", "").split()]),
        (f"Series Instance UID (new, {layout})", spec.document.series == "document",
         [m.get("series_instance_uid", "") for m in files.values()]),
        ("Study Instance UID (source)", False,
         [s.get(study, "") for _, s in converted] if study else []),
        ("SOP Instance UID (annotated image)", False,
         [s.get(image, "") for _, s in converted] if image else []),
    ):
        count, repeats = distinct(values)
        sub(
            node, "uid", kind=label, distinct=str(count), repeats=str(repeats),
            unique="yes" if unique else "no",
        )


def _compared(spec: Spec) -> tuple[list[str], list[str]]:
    """The columns an SR gives back as written, and those given back as float32."""
    exact: list[str] = []
    coordinates: list[str] = []
    for name in spec.columns:
        cell = spec.cells[name]
        if cell.type in ("ignore", "spreadsheet_day") or (cell.type == "TM" and cell.repair):
            continue
        (coordinates if cell.type in ("coordinate", "points") else exact).append(name)
    return exact, coordinates


def _same_float32(a: str, b: str) -> bool:
    try:
        return [np.float32(float(v)) for v in a.replace(",", " ").split()] == [
            np.float32(float(v)) for v in b.replace(",", " ").split()]
    except ValueError:
        return a == b


def _roundtrip(
    parent: etree._Element,
    spec: Spec,
    export_path: Path,
    converted: list[tuple[dict[str, str], dict[str, str]]],
) -> None:
    """Compare the exported table with the input: every column the SR carries as written
    exactly, coordinates as 32-bit floats; rows matched by the profile's unique columns."""
    node = sub(parent, "roundtrip", ran="yes" if export_path.is_file() else "no")
    if not export_path.is_file():
        return
    exported = read_csv_rows(export_path)
    keys = spec.unique_columns
    by_key = {tuple(row.get(c, "") for c in keys): row for row in exported}
    set_attr(node, "exported", str(len(exported)))
    exact, coordinates = _compared(spec)
    matched = 0
    mismatches: list[tuple[str, str, str, str]] = []
    for manifest, source in converted:
        name = _key(spec, manifest)
        row = by_key.get(tuple(manifest.get(c, "") for c in keys)) if keys else None
        if row is None:
            mismatches.append((name, " / ".join(keys) or "(row)", name, ""))
            continue
        bad = [c for c in exact if c in row and row[c] != source.get(c, "")]
        bad += [c for c in coordinates if c in row and not _same_float32(row[c],
                                                                          source.get(c, ""))]
        mismatches.extend((name, c, source.get(c, ""), row[c]) for c in bad)
        matched += not bad
    set_attr(node, "matched", str(matched))
    set_attr(node, "compared-columns", " ".join(exact + coordinates))
    for key, column, expected, found in mismatches[:50]:
        sub(node, "mismatch", key=key, column=column, csv=expected, sr=found)
    set_attr(node, "mismatches", str(len(mismatches)))


def build_summary(
    out: Path,
    csv_path: Path,
    *,
    profile: Spec,
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
    source = read_source(csv_path, profile)
    rejected = read_csv_rows(out / "rejected.csv")
    validation = read_validation(out / "validation.json")
    converted = [
        (m, source.get(int(m["line"]), {}))
        for m in manifest
        if m.get("status") == "converted" and m.get("line", "").isdigit()
    ]
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    patient = _first_column(profile, "patient")
    observer = _first_column(profile, "observer")
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
            "files": str(len({m.get("path", "") for m, _ in converted})),
            "patients": str(len({s.get(patient, "") for _, s in converted})),
            "observers": str(len({s.get(observer, "") for _, s in converted})),
        },
    )
    _tallies(root, profile, [s for _, s in converted], rejected)
    _rejected(root, profile, rejected)
    findings = _collect_findings(out, validation)
    _validation(root, out, validation, findings)
    _uids(root, profile, converted)
    _roundtrip(root, profile, out / "export.csv", converted)
    listed = sub(root, "tools")
    for tool, tool_version in tool_versions(validation, tools):
        sub(listed, "tool", name=tool, version=tool_version)
    timings = sub(root, "timings")
    for stage, (status, seconds) in read_stages(out / "stages").items():
        sub(timings, "stage", name=stage, status=str(status), seconds=f"{seconds:.3f}")
    _files(root, out, profile, converted, findings)
    return root
