"""Validate SRs converted from the real CCC2017 CSV: zero errors from every source."""

from __future__ import annotations

from pathlib import Path

import pytest

from csv2sr.conversion.batch import convert
from csv2sr.validate import validate_files
from csv2sr.validate.findings import Severity, Source

ROWS = 200


@pytest.fixture(scope="module")
def converted_200(real_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 200 data rows of the real CSV, converted with
    ``csv2sr.conversion.batch.convert``."""
    folder = tmp_path_factory.mktemp("real200")
    lines = real_csv.read_bytes().split(b"\r\n")
    part = folder / "first200.csv"
    part.write_bytes(b"\r\n".join(lines[: ROWS + 1]) + b"\r\n")
    result = convert(part, folder / "out", jobs=2)
    assert result.converted == ROWS, result.errors[:3]
    return folder / "out" / "sr"


def test_real_rows_validate_without_errors(converted_200: Path) -> None:
    report = validate_files([converted_200], jobs=2, use_dciodvfy=True)
    assert len(report.files) == ROWS
    errors = [(f.path, x.source.value, x.message) for f in report.files for x in f.findings
              if x.severity is Severity.ERROR]
    assert errors == []
    own_warnings = [x for f in report.files for x in f.findings
                    if x.source is Source.CSV2SR and x.severity is Severity.WARNING]
    assert own_warnings == []
    if report.tools["dciodvfy"] is None:
        pytest.skip("dciodvfy is not installed: only the own checks ran")
    # the accepted, documented dciodvfy warnings: Study ID and Patient's Name = Patient ID
    kinds = {
        "StudyID" if "DICOMDIR" in x.message else "PN" if "Retired Person Name" in x.message
        else x.message
        for f in report.files for x in f.findings
        if x.source is Source.DCIODVFY and x.severity is Severity.WARNING
    }
    assert kinds == {"StudyID", "PN"}
