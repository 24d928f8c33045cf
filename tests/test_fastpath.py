"""conversion/fastpath.py is proven equal to the highdicom builder, byte for byte, on every
real row, both code modes, with and without ``--ohif`` (the generated rows of the other
profiles: tests/test_profiles_fastpath.py)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.conversion.document import dataset_bytes
from csv2sr.conversion.fastpath import FastEncoder
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile
from records import radiologist, with_annotator

PROFILE = load_profile("ccc2017")


def _mismatches(args: tuple[list[Record], str, bool]) -> list[int]:
    """Lines whose fast bytes differ from highdicom's, for one slice of rows."""
    rows, mode_name, ohif = args
    mode = CodeMode(mode_name)
    fast = FastEncoder(PROFILE, mode, ohif)
    bad = []
    for row in rows:
        if fast.encode_bytes(row) != dataset_bytes(encode(row, PROFILE, mode, ohif=ohif)):
            bad.append(row.line)
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("ohif", [False, True], ids=["default", "ohif"])
@pytest.mark.parametrize("mode", ["sct", "srt"])
def test_every_real_row_is_byte_identical_to_highdicom(
    real_csv: Path, mode: str, ohif: bool
) -> None:
    rows = [r for r in read_rows(real_csv, PROFILE) if isinstance(r, Record)]
    assert len(rows) == 2345
    # each slice starts a fresh encoder, so templates are rebuilt and checked per slice
    slices = [(rows[i::4], mode, ohif) for i in range(4)]
    with ProcessPoolExecutor(2) as pool:
        bad = [line for part in pool.map(_mismatches, slices) for line in part]
    assert bad == []


@pytest.mark.parametrize("ohif", [False, True], ids=["default", "ohif"])
def test_shapes_cover_missing_study_time_and_roles(sample_csv: Path, ohif: bool) -> None:
    rows = [r for r in read_rows(sample_csv, PROFILE) if isinstance(r, Record)]
    assert _mismatches((rows, "sct", ohif)) == []
    assert _mismatches((rows, "srt", ohif)) == []
    fast = FastEncoder(PROFILE, CodeMode.SCT)
    for row in rows + rows:  # a shape's template comes with its second document
        fast.encode_bytes(row)
    assert fast.pending == {}
    shapes = [shape for shape, template in fast.templates.items() if template is not None]
    # empty StudyTime, and no radiologist role: shapes of their own, each with a template
    assert any(s.first.study_time == "" for s in shapes)
    assert any(s.first.observer.role is None for s in shapes)
    assert any(s.first.observer.role is not None and s.first.study_time for s in shapes)
    assert {radiologist(r) for r in rows} == {True, False}


def test_non_ascii_rows_fall_back_to_highdicom(sample_csv: Path) -> None:
    row = next(r for r in read_rows(sample_csv, PROFILE) if isinstance(r, Record))
    odd = with_annotator(row, "zoë_kiwi")
    fast = FastEncoder(PROFILE, CodeMode.SCT)
    assert fast.shape(fast_document(odd)) is None
    assert _mismatches(([row, odd], "sct", False)) == []
    assert _mismatches(([row, odd], "sct", True)) == []


def fast_document(row: Record):  # type: ignore[no-untyped-def]
    from csv2sr.conversion.document import as_document  # noqa: PLC0415

    return as_document(row, PROFILE)
