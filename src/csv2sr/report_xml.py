"""One SR file -> an XML rendering of its header and content tree, and the XSLT step.

The rendering is what ``xslt/sr.xsl`` turns into a readable HTML page, in the spirit of
DCMTK's ``dsr2html``: each content item (PS3.3 C.17.3, SR Document Content Module) becomes
an ``<item>`` carrying its relationship (PS3.3 C.17.3.2.4), value type (PS3.3 Table
C.17.3-1), concept name and value, and its children nested inside it.  Items are numbered
as ``dcsrdump`` numbers them (``1.5.1.4``), so a page can be read next to a dump.

Nothing here reads the clock: the same SR gives the same bytes.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from lxml import etree
from pydicom import Dataset, dcmread
from pydicom.uid import UID

__all__ = [
    "XSLT_DIR",
    "ReportRenderError",
    "load_stylesheet",
    "render",
    "sr_to_xml",
    "write_text_atomic",
]

log = logging.getLogger(__name__)

XSLT_DIR = Path(__file__).resolve().parents[2] / "xslt"
"""The stylesheets of the source tree (``xslt/`` next to ``src/``)."""

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


class ReportRenderError(Exception):
    """A file cannot be rendered: not DICOM, not an SR, or a stylesheet failed."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _text(value: object) -> str:
    """A DICOM value as display text (multi-valued joined with backslash, PS3.5 6.4)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(_text(v) for v in value)  # type: ignore[attr-defined]
    return str(value)


def _code(parent: etree._Element, tag: str, item: Dataset) -> None:
    """A code sequence item (PS3.3 Table 8.8-1) as ``<tag value scheme meaning/>``."""
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    etree.SubElement(
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
        node = etree.SubElement(
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
            node.set("frames", _text(frames))


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
        etree.SubElement(node, "text").text = _text(item.get(simple[kind]))
    elif kind == "CODE":
        for code in item.get("ConceptCodeSequence", []):
            _code(node, "code", code)
    elif kind == "NUM":
        for measured in item.get("MeasuredValueSequence", []):
            num = etree.SubElement(node, "num", value=_text(measured.get("NumericValue")))
            for unit in measured.get("MeasurementUnitsCodeSequence", []):
                _code(num, "unit", unit)
    elif kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        _reference(node, item)
    elif kind in ("SCOORD", "SCOORD3D"):
        etree.SubElement(
            node,
            "graphic",
            type=_text(item.get("GraphicType")),
            points=_coordinates(item.get("GraphicData", [])),
            frame_of_reference=_text(item.get("ReferencedFrameOfReferenceUID")),
        )
    elif kind == "CONTAINER":
        node.set("continuity", _text(item.get("ContinuityOfContent")))
        for template in item.get("ContentTemplateSequence", []):
            node.set(
                "template",
                f"{_text(template.get('MappingResource'))} "
                f"{_text(template.get('TemplateIdentifier'))}".strip(),
            )


def _item(parent: etree._Element, item: Dataset, number: str) -> None:
    """One content item and, recursively, its Content Sequence (PS3.3 C.17.3)."""
    node = etree.SubElement(
        parent,
        "item",
        id=number,
        relationship=_text(item.get("RelationshipType")),
        type=_text(item.get("ValueType")),
    )
    by_reference = item.get("ReferencedContentItemIdentifier")
    if by_reference is not None:
        node.set("by-reference", ".".join(str(int(v)) for v in by_reference))
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
    root = etree.Element("sr", path=path)
    sop_class = UID(_text(ds.get("SOPClassUID")))
    root.set("sop-class", str(sop_class))
    root.set("sop-class-name", sop_class.name if sop_class.is_valid else "")
    header = etree.SubElement(root, "header")
    for label, keyword in _HEADER:
        if keyword in ds:
            etree.SubElement(header, "field", name=label, keyword=keyword).text = _text(
                ds.get(keyword)
            )
    for author in ds.get("AuthorObserverSequence", []):
        name = author.get("PersonName") or author.get("DeviceObserverName")
        etree.SubElement(header, "field", name="Author Observer", keyword="").text = _text(name)
    evidence = etree.SubElement(root, "evidence")
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in study.get("ReferencedSeriesSequence", []):
            node = etree.SubElement(
                evidence,
                "series",
                study=_text(study.get("StudyInstanceUID")),
                uid=_text(series.get("SeriesInstanceUID")),
            )
            _reference(node, series)
    content = etree.SubElement(root, "content")
    _item(content, ds, "1")
    return root


def sr_file_to_xml(path: Path, relpath: str) -> etree._Element:
    """Read ``path`` (an SR file) and render it; :class:`ReportRenderError` if it is not one."""
    try:
        ds = dcmread(path)
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


def write_text_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` through a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
