"""With the source images known (``--images``), conversion/fastpath.py still gives
highdicom's bytes: the enriched headers (csv2sr.images.enrich.enriched_header: the image's
patient and study attributes, the Image Library entry of PS3.16 TID 1601/1602/1604) are
slots of the templates and which of their attributes are present or empty is part of the
shape.  Seeded generated headers and rows of every test profile here; every real row with
a synthetic image per annotated instance in the slow test."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import CTImageStorage

from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.conversion.compose import composable
from csv2sr.conversion.document import dataset_bytes
from csv2sr.conversion.fastpath import FastEncoder
from csv2sr.conversion.group import documents
from csv2sr.dicom.codes import CodeMode, image_modality
from csv2sr.images.enrich import enriched_header
from csv2sr.images.index import ImageIndex
from csv2sr.mapping.load import load_profile
from csv2sr.mapping.record import Document, ImageRef
from csv2sr.mapping.spec import Spec
from imagegen import write_images_like
from profilegen import TEST_PROFILES, generate_rows, profile_path, write_table

ROWS = 40

_SPACINGS = ("0.703125", "0.5", "0.976562", "7.8125e-01", "0.66406250", "1")
_POSITIONS = ("-180", "-179.6484375", "12.5", "-0.25", "250.000000", "1e2")


PATTERNS = 3
"""Header forms (which attributes are present, empty or absent): 0 all present, 1 the
Type 2 ones empty and no Frame of Reference, 2 the optional ones absent and no geometry
(no Image Library descriptors); few, so that shapes repeat and templates are rendered."""


def _put(ds: Dataset, pattern: int, keyword: str, value: object, *,
         optional: bool = False) -> None:
    """``keyword`` as the header form ``pattern`` has it."""
    if pattern == 0 or (pattern == 1 and optional):
        setattr(ds, keyword, value)
    elif pattern == 1 or not optional:
        setattr(ds, keyword, "")


def _header(chance: random.Random, document: Document, image: ImageRef,
            pattern: int) -> Dataset:
    """A plausible image header for ``image`` in the form ``pattern`` with seeded values:
    the patient and study attributes mostly the row's (sometimes others), the geometry of
    TID 1604 with varied values and number formats.  Written and read back, as the index
    keeps headers read from files."""
    record = document.first
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = image.sop_class_uid or CTImageStorage
    ds.SOPInstanceUID = image.sop_instance_uid
    ds.SeriesInstanceUID = image.series_uid
    modality = image_modality(str(ds.SOPClassUID))
    ds.Modality = modality.value if modality is not None else "OT"
    ds.StudyInstanceUID = record.study_uid if chance.random() < 0.9 else f"{record.study_uid}.9"
    ds.PatientID = record.patient_id if chance.random() < 0.9 else f"P{chance.randrange(99)}"
    _put(ds, pattern, "PatientName", chance.choice([record.patient_id, "Doe^Jane", "X"]))
    _put(ds, pattern, "PatientBirthDate",
         f"19{chance.randrange(10, 99)}0{chance.randrange(1, 9)}15")
    _put(ds, pattern, "PatientSex", "F")
    _put(ds, pattern, "PatientAge", f"0{chance.randrange(10, 99)}Y", optional=True)
    _put(ds, pattern, "StudyDate", record.study_date or "20010203")
    _put(ds, pattern, "StudyTime", chance.choice(
        [record.study_time or "101010", "083000.5", "0930", "12", "235959.123456"]))
    _put(ds, pattern, "ReferringPhysicianName", chance.choice(["Referrer^Rita", "R"]))
    _put(ds, pattern, "StudyID", str(chance.randrange(1, 9999)))
    _put(ds, pattern, "AccessionNumber", f"A{chance.randrange(10**6)}")
    _put(ds, pattern, "StudyDescription", chance.choice(["CT chest", "abdomen (synthetic)"]),
         optional=True)
    if pattern < 2:
        ds.Rows = chance.choice([512, 512, 256, 1024])
        ds.Columns = chance.choice([512, 512, 384])
        spacing = chance.choice(_SPACINGS)
        ds.PixelSpacing = [spacing, chance.choice([spacing, *_SPACINGS])]
        ds.ImagePositionPatient = [chance.choice(_POSITIONS) for _ in range(3)]
        ds.ImageOrientationPatient = chance.choice(
            [[1, 0, 0, 0, 1, 0], ["1", "0", "0", "0", "0", "-1"],
             ["0.9998", "0.0175", "0", "-0.0175", "0.9998", "0"]])
        ds.SliceThickness = chance.choice(["2.5", "1.25", "5", "0.625000"])
    if pattern == 0:
        ds.FrameOfReferenceUID = f"{image.series_uid}.77"
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True)
    return dcmread(io.BytesIO(buffer.getvalue()), force=True)


def _headers(chance: random.Random, document: Document) -> dict[str, Dataset]:
    """Enriched headers of the document's images; now and then one image has none."""
    found = {}
    pattern = chance.randrange(PATTERNS)
    for record in document.records:
        for image in record.images:
            if image.sop_instance_uid in found or chance.random() < 0.05:
                continue
            found[image.sop_instance_uid] = enriched_header(
                _header(chance, document, image, pattern), record, image)
    return found


def _documents(spec: Spec, folder: Path, seed: int) -> Iterator[Document]:
    table = write_table(folder / "t.csv", spec, generate_rows(spec, ROWS, seed=seed))
    items = list(read_rows(table, spec))
    assert all(isinstance(i, Record) for i in items)
    yield from (d for d in documents(items, spec, table) if isinstance(d, Document))


@pytest.mark.parametrize("name", [*TEST_PROFILES, "ccc2017"])
def test_enriched_documents_render_highdicoms_bytes(name: str, tmp_path: Path) -> None:
    spec = load_profile(name if name == "ccc2017" else profile_path(name))
    chance = random.Random(len(name) * 104729)
    fast = FastEncoder(spec, CodeMode.SCT)
    mismatched = []
    docs = list(_documents(spec, tmp_path, seed=len(name) * 31))
    # each document twice with the same headers, so that every shape gets its template
    # (proven on the first), then rendered for the second and for the other documents
    cases = [(d, h, dataset_bytes(encode(d, spec, CodeMode.SCT, headers=h)))
             for d, h in ((d, _headers(chance, d)) for d in docs)]
    for document, headers, reference in cases + cases:
        if fast.encode_bytes(document, headers) != reference:
            mismatched.append(document.relpath)
    assert mismatched == []
    # every shape has a template or, for SRs of several groups whose images all have
    # headers, is composed (conversion/compose.py): none left to highdicom
    composed = {s for s, plan in fast.composer.plans.items() if plan is not None}
    assert all(t is not None for t in fast.templates.values())
    assert all(fast.shape(d, h) in {*fast.templates, *composed} for d, h, _ in cases)
    if any(composable(d, h) for d, h, _ in cases):
        assert composed, "SRs of several groups with headers were composed"
    if spec.document.per == "row":
        assert len(fast.templates) < len(docs)


def test_non_ascii_header_falls_back_to_highdicom(tmp_path: Path) -> None:
    spec = load_profile("ccc2017")
    chance = random.Random(5)
    document = next(_documents(spec, tmp_path, seed=5))
    headers = _headers(chance, document)
    for header in headers.values():
        header.PatientName = "Zoë^Kiwi"
    fast = FastEncoder(spec, CodeMode.SCT)
    assert fast.shape(document, headers) is None
    for _ in range(2):
        assert fast.encode_bytes(document, headers) == dataset_bytes(
            encode(document, spec, CodeMode.SCT, headers=headers))
    assert fast.templates == {}


def _real_mismatches(args: tuple[list[Record], str, Path]) -> list[int]:
    rows, mode_name, folder = args
    mode = CodeMode(mode_name)
    spec = load_profile("ccc2017")
    index = ImageIndex.from_folder(folder, jobs=1)
    fast = FastEncoder(spec, mode)
    bad = []
    for row in rows:
        image = row.images[0]
        found = index.get(image.sop_instance_uid)
        assert found is not None
        headers = {image.sop_instance_uid: enriched_header(found, row, image)}
        if fast.encode_bytes(row, headers) != dataset_bytes(
                encode(row, spec, mode, headers=headers)):
            bad.append(row.line)
    return bad


@pytest.mark.slow
def test_real_rows_with_their_images_are_byte_identical(real_csv: Path,
                                                         tmp_path: Path) -> None:
    write_images_like(real_csv, tmp_path)
    spec = load_profile("ccc2017")
    rows = [r for r in read_rows(real_csv, spec) if isinstance(r, Record)]
    assert len(rows) == 2345
    # every 4th real row (586 rows, every anatomy and patient-ID form): highdicom builds
    # each with its image at a few SR/s, and the real rows add no shape the generated
    # headers above do not cover
    sample = rows[::4]
    slices = [(sample[i::2], "sct", tmp_path) for i in range(2)]
    with ProcessPoolExecutor(2) as pool:
        bad = [line for part in pool.map(_real_mismatches, slices) for line in part]
    assert bad == []
