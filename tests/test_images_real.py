"""The image cross-checks over every row of the real CCC2017 table.

The real CT images are not in the repository, so ``imagegen.write_images_like`` writes one
synthetic image per annotated instance with the table's own UIDs, patient, study, series
and slice, and a Pixel Spacing rounded to 1/1024 mm from the row's ``length``.  Every real
row must then pass every check: the length tolerance absorbs the table's rounding, all
lines lie inside 512 x 512, and no instance is claimed by two series, studies or patients.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from csv2sr.conversion.checks import Record, read_rows
from csv2sr.images.checks import check_row_against_image, length_problem
from csv2sr.images.index import ImageIndex
from csv2sr.mapping.load import load_profile
from imagegen import write_images_like
from records import instance_uid, length, line

pytestmark = pytest.mark.slow

PROFILE = load_profile("ccc2017")


@pytest.fixture(scope="module")
def real_images(real_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real-images")
    written = write_images_like(real_csv, folder)
    assert len(written) == 1466  # annotated slices, README of the data
    return folder


def test_every_real_row_matches_its_image(real_csv: Path, real_images: Path) -> None:
    index = ImageIndex.from_folder(real_images)
    assert len(index) == 1466 and index.skipped == () and index.duplicates == ()
    rows = [r for r in read_rows(real_csv, load_profile("ccc2017")) if isinstance(r, Record)]
    assert len(rows) == 2345
    failures = {}
    for row in rows:
        header, problems = check_row_against_image(row, index, path=real_csv, spec=PROFILE)
        assert header is not None
        if problems:
            failures[row.line] = [f"{p.column}: {p.message}" for p in problems]
    assert failures == {}


def test_a_neighbouring_spacing_is_caught_on_real_rows(
    real_csv: Path, real_images: Path
) -> None:
    """One 1/1024 mm step of Pixel Spacing (the smallest difference between CT spacings)
    makes every real line longer than 20 mm fail the length check."""
    index = ImageIndex.from_folder(real_images)
    rows = [r for r in read_rows(real_csv, load_profile("ccc2017")) if isinstance(r, Record)]
    caught = 0
    for row in rows:
        header = index.get(instance_uid(row))
        assert header is not None
        shifted = header.copy()
        shifted.PixelSpacing = [float(v) + 1 / 1024 for v in header.PixelSpacing]
        if float(length(row)) > 20:
            assert length_problem(line(row), shifted) is not None, row.line
            caught += 1
    assert caught > 2000
