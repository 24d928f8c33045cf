"""The report folder: ``summary.xml``, ``index.html`` and one readable page per SR.

:func:`sr_to_xml` turns one SR file into its header and content tree as ``<sr>``, which
``xslt/sr.xsl`` turns into a page in the spirit of DCMTK's ``dsr2html``: each content item
(PS3.3 C.17.3, SR Document Content Module) becomes an ``<item>`` carrying its relationship
(PS3.3 C.17.3.2.4), value type (PS3.3 Table C.17.3-7), concept name and value, its children
nested inside it, numbered as ``dcsrdump`` numbers them (``1.5.1.4``,
:mod:`csv2sr.dicom.tree`).  :func:`render_report` writes the whole folder, the pages in
worker processes.  Everything is written by :mod:`csv2sr.atomic`.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import BinaryIO

from lxml import etree
from pydicom import dcmread
from pydicom.uid import UID

from csv2sr.atomic import InsideReader, OutputError, open_inside, remove_inside, write_atomic
from csv2sr.cache import ResultCache, file_digest, read_regular
from csv2sr.dicom.reading import NotQuickError, SrItem, read_items
from csv2sr.dicom.tree import ROOT_ID, child_id, item_id
from csv2sr.errors import held_interrupts, leave_interrupts
from csv2sr.pools import stopping
from csv2sr.release.elements import display_text, element, set_attr, sub
from csv2sr.release.folder import page_relpath, regular_files
from csv2sr.release.render import XSLT_DIR, ReportRenderError, render

__all__ = [
    "render_report",
    "sr_file_to_xml",
    "sr_to_xml",
]

log = logging.getLogger(__name__)


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


def _code(parent: etree._Element, tag: str, item: SrItem) -> None:
    """A code sequence item (PS3.3 Table 8.8-1) as ``<tag value scheme meaning/>``."""
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    sub(
        parent,
        tag,
        value=display_text(value),
        scheme=display_text(item.get("CodingSchemeDesignator")),
        meaning=display_text(item.get("CodeMeaning")),
    )


def _reference(parent: etree._Element, item: SrItem) -> None:
    """IMAGE / COMPOSITE / WAVEFORM value: Referenced SOP Sequence (PS3.3 Table C.18.3-1)."""
    for ref in item.get("ReferencedSOPSequence", []):
        sop_class = UID(display_text(ref.get("ReferencedSOPClassUID")))
        node = sub(
            parent,
            "reference",
            {
                "sop-class": str(sop_class),
                "sop-class-name": sop_class.name if sop_class.is_valid else "",
                "sop-instance": display_text(ref.get("ReferencedSOPInstanceUID")),
            },
        )
        frames = ref.get("ReferencedFrameNumber")
        if frames is not None:
            set_attr(node, "frames", display_text(frames))


def _coordinates(values: Iterable[object]) -> str:
    """Graphic Data as ``(x, y)`` pairs (PS3.3 C.18.6.1.1: column, row)."""
    numbers = [f"{float(v):g}" for v in values]  # type: ignore[arg-type]
    pairs = [f"({numbers[i]}, {numbers[i + 1]})" for i in range(0, len(numbers) - 1, 2)]
    return " ".join(pairs)


def _value(node: etree._Element, item: SrItem) -> None:
    """The value of one content item by its Value Type (PS3.3 Table C.17.3-7 and C.18)."""
    kind = display_text(item.get("ValueType"))
    simple = {
        "TEXT": "TextValue", "PNAME": "PersonName", "UIDREF": "UID", "DATE": "Date",
        "TIME": "Time", "DATETIME": "DateTime",
    }
    if kind in simple:
        sub(node, "text", text=display_text(item.get(simple[kind])))
    elif kind == "CODE":
        for code in item.get("ConceptCodeSequence", []):
            _code(node, "code", code)
    elif kind == "NUM":
        for measured in item.get("MeasuredValueSequence", []):
            num = sub(node, "num", value=display_text(measured.get("NumericValue")))
            for unit in measured.get("MeasurementUnitsCodeSequence", []):
                _code(num, "unit", unit)
    elif kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        _reference(node, item)
    elif kind in ("SCOORD", "SCOORD3D"):
        sub(
            node,
            "graphic",
            type=display_text(item.get("GraphicType")),
            points=_coordinates(item.get("GraphicData", [])),
            frame_of_reference=display_text(item.get("ReferencedFrameOfReferenceUID")),
        )
    elif kind == "CONTAINER":
        set_attr(node, "continuity", display_text(item.get("ContinuityOfContent")))
        for template in item.get("ContentTemplateSequence", []):
            set_attr(
                node,
                "template",
                f"{display_text(template.get('MappingResource'))} "
                f"{display_text(template.get('TemplateIdentifier'))}".strip(),
            )


def _item(parent: etree._Element, item: SrItem, number: str) -> None:
    """One content item and, recursively, its Content Sequence (PS3.3 C.17.3)."""
    node = sub(
        parent,
        "item",
        id=number,
        relationship=display_text(item.get("RelationshipType")),
        type=display_text(item.get("ValueType")),
    )
    by_reference = item.get("ReferencedContentItemIdentifier")
    if by_reference is not None:
        set_attr(node, "by-reference", item_id(int(v) for v in by_reference))
    for concept in item.get("ConceptNameCodeSequence", []):
        _code(node, "concept", concept)
    _value(node, item)
    for position, child_item in enumerate(item.get("ContentSequence") or [], start=1):
        _item(node, child_item, child_id(number, position))


def sr_to_xml(ds: SrItem, *, path: str = "") -> etree._Element:
    """The header and content tree of one SR as ``<sr>``; the document root is item ``1``.

    ``path`` (the file's path in the release, e.g. ``sr/P/order-0001.dcm``) is recorded so
    the page can name and link its file.
    """
    root = element("sr", path=path)
    sop_class = UID(display_text(ds.get("SOPClassUID")))
    set_attr(root, "sop-class", str(sop_class))
    set_attr(root, "sop-class-name", sop_class.name if sop_class.is_valid else "")
    header = sub(root, "header")
    for label, keyword in _HEADER:
        if keyword in ds:
            sub(header, "field", name=label, keyword=keyword, text=display_text(ds.get(keyword)))
    for author in ds.get("AuthorObserverSequence", []):
        name = author.get("PersonName") or author.get("DeviceObserverName")
        sub(header, "field", name="Author Observer", keyword="", text=display_text(name))
    evidence = sub(root, "evidence")
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in study.get("ReferencedSeriesSequence", []):
            node = sub(
                evidence,
                "series",
                study=display_text(study.get("StudyInstanceUID")),
                uid=display_text(series.get("SeriesInstanceUID")),
            )
            _reference(node, series)
    content = sub(root, "content")
    _item(content, ds, ROOT_ID)
    return root


def sr_file_to_xml(
    path: Path, relpath: str, handle: BinaryIO | None = None
) -> etree._Element:
    """Read ``path`` (an SR file; from ``handle`` when given, already open) and render it;
    :class:`ReportRenderError` if it is not one.

    The file is read by :mod:`csv2sr.dicom.reading` (pydicom's values, without its
    Dataset); one that reader does not take, or whose values pydicom's converters refuse,
    is read by ``dcmread``, which says what is wrong with it."""
    try:
        data = handle.read() if handle is not None else path.read_bytes()
    except OSError:
        data = None
    if data is not None:
        try:
            return _document(read_items(data), path, relpath)
        except ReportRenderError:
            raise
        except NotQuickError:
            pass
        except Exception:  # a value pydicom refuses: dcmread's turn, it says what
            log.debug("%s: read again with dcmread", path, exc_info=True)
        handle = io.BytesIO(data)
    try:
        ds = dcmread(handle if handle is not None else path)
    except Exception as exc:  # pydicom raises many types for damaged files
        raise ReportRenderError(path, f"not readable as DICOM: {exc}") from exc
    return _document(ds, path, relpath)


def _document(ds: SrItem, path: Path, relpath: str) -> etree._Element:
    if "ValueType" not in ds or "ConceptNameCodeSequence" not in ds:
        raise ReportRenderError(path, "not an SR document (no root content item, PS3.3 C.17.3)")
    return sr_to_xml(ds, path=relpath)


_PageTask = tuple[Path, Path, str, str, str, str, Path]
"""(OUT, REPORT_DIR, SR path in the release, report, dump and index links, sr.xsl)."""

_PageDone = tuple[str | None, str, str]
"""(an error message or None, the SHA-256 of the SR read, of the page written)."""


def _page_job(args: _PageTask) -> _PageDone:
    """Render one SR page (runs in a worker process).

    The SR is read without following a link inside OUT; the page is written inside
    REPORT_DIR only (a manifest path that would leave it is refused), unless it is there
    already with the same bytes."""
    out, report_dir, relpath, report, dump, index, stylesheet = args
    try:
        with open_inside(out, relpath) as handle:
            data = handle.read()
        xml = sr_file_to_xml(out / relpath, relpath, io.BytesIO(data))
        html = render(xml, stylesheet, index=index, report=report, dump=dump,
                      dcm="/".join([".."] * (relpath.count("/") + 1)) + "/" + relpath)
        write_atomic(report_dir / page_relpath(relpath), html, root=report_dir,
                     durable=False, keep_same=True)
    except ReportRenderError as exc:
        return str(exc), "", ""
    except OSError as exc:
        return f"{out / relpath}: not rendered: {exc.strerror or exc}", "", ""
    except OutputError as exc:
        return f"{exc}", "", ""
    return None, file_digest(data), file_digest(html)


def render_report(
    out: Path,
    summary: etree._Element,
    report_dir: Path,
    *,
    xslt_dir: Path = XSLT_DIR,
    jobs: int | None = None,
    cache: Path | None = None,
) -> list[str]:
    """Write ``summary.xml``, ``index.html`` and one page per SR; return the failures.

    A file that would be written with the bytes it has is left as it is.  ``cache``: a
    JSON file (:mod:`csv2sr.cache`) of the SHA-256 of each page and of the SR it was made
    of: a page whose SR, links and stylesheet are unchanged, and which is still there as
    it was written, is not made again.  Raises :class:`csv2sr.atomic.OutputError` when
    REPORT_DIR cannot be written."""
    write_atomic(
        report_dir / "summary.xml",
        etree.tostring(summary, xml_declaration=True, encoding="UTF-8", pretty_print=True),
        root=report_dir, keep_same=True,
    )
    # index.html is archived: it is rendered without the stage timings.
    archived = etree.fromstring(etree.tostring(summary))
    for timings in archived.findall("timings"):
        archived.remove(timings)
    write_atomic(
        report_dir / "index.html", render(archived, xslt_dir / "release-report.xsl"),
        root=report_dir, keep_same=True,
    )
    stale = {
        path.relative_to(report_dir).as_posix()
        for path in regular_files(report_dir / "sr", ".html")
    }
    tasks = []
    for node in summary.iterfind("files/file"):
        relpath = node.get("path", "")
        stale.discard(node.get("page", ""))
        depth = "/".join([".."] * relpath.count("/"))
        tasks.append(
            (out, report_dir, relpath,
             f"{depth}/{node.get('report')}" if node.get("report") else "",
             f"{depth}/{node.get('dump')}" if node.get("dump") else "",
             f"{depth}/index.html", xslt_dir / "sr.xsl")
        )
    for rel in sorted(stale):
        remove_inside(report_dir, rel)
    stylesheet = _digest_of(xslt_dir / "sr.xsl")
    store = ResultCache(cache if stylesheet else None, {"stage": "pages", "sr.xsl": stylesheet})
    with InsideReader(out) as srs, InsideReader(report_dir) as pages:
        todo = [task for task in tasks if not _page_unchanged(store, task, srs, pages)]
    failures = []
    for task, (failure, sr, page) in zip(todo, _run_pages(todo, jobs), strict=True):
        if failure is not None:
            failures.append(failure)
        else:
            store.put(_page_key(task), sr, page)
    store.save()
    return failures


def _digest_of(path: Path) -> str:
    data = read_regular(path)
    return file_digest(data) if data is not None else ""


def _page_key(task: _PageTask) -> str:
    """A page's cache entry: its SR and its links (the page changes with any of them)."""
    _, _, relpath, report, dump, index, _ = task
    return "\t".join((relpath, report, dump, index))


def _page_unchanged(store: ResultCache, task: _PageTask, srs: InsideReader,
                    pages: InsideReader) -> bool:
    """The page is there as an earlier run made it of these SR bytes and links (``srs``
    reads the release, ``pages`` the report folder)."""
    if not store.enabled:
        return False
    relpath = task[2]
    sr = srs(relpath)
    if sr is None:
        return False
    page = pages(page_relpath(relpath))
    return page is not None and store.get(_page_key(task), file_digest(sr)) == file_digest(page)


def _run_pages(tasks: list[_PageTask], jobs: int | None) -> list[_PageDone]:
    workers = min(jobs or os.cpu_count() or 1, max(1, len(tasks) // 200))
    if workers <= 1:
        return list(map(_page_job, tasks))
    with stopping(ProcessPoolExecutor(max_workers=workers,
                                      initializer=leave_interrupts)) as pool:
        with held_interrupts():  # map submits every task, starting the workers
            done = pool.map(_page_job, tasks, chunksize=64)
        return list(done)
