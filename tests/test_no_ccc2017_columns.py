"""Issue 10 invariant 2: no module outside ``mapping/`` (and no stylesheet) names a CCC2017
column; the ccc2017 profile (mapping/profiles/ccc2017.toml) is the only place that knows
them.  Columns named like DICOM keywords (StudyInstanceUID, ...) are DICOM's, not CCC2017's."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from conftest import ROOT
from csv2sr.mapping.load import load_profile

DICOM_KEYWORDS = {"StudyInstanceUID", "StudyDate", "StudyTime", "SOPClassUID"}
GENERIC = {"order", "length", "date"}
"""Column names that are also plain words (f-string fields, XML element kinds): only a
use as a key (``cells["order"]``, ``.get("order")``, ``name="order"``) names the column."""


def _columns() -> list[str]:
    return [c for c in load_profile("ccc2017").columns if c not in DICOM_KEYWORDS]


@functools.cache
def _sources() -> tuple[Path, ...]:
    found = [p for p in (ROOT / "src").rglob("*")
             if p.suffix in (".py", ".xsl", ".xslt", ".json")
             and "mapping" not in p.relative_to(ROOT / "src").parts[:2]
             and "egg-info" not in str(p)]
    found += [p for p in (ROOT / "xslt").rglob("*") if p.is_file()]
    return tuple(sorted(found))


@functools.cache
def _texts() -> tuple[tuple[Path, tuple[str, ...]], ...]:
    return tuple((p, tuple(p.read_text(encoding="utf-8").splitlines())) for p in _sources())


def _patterns(column: str) -> re.Pattern[str]:
    name = re.escape(column)
    if column in GENERIC:
        return re.compile(rf"""\[\s*["']{name}["']\s*\]|\.get\(\s*["']{name}["']"""
                          rf"""|name\s*=\s*["']{name}["']|@name\s*=\s*["']{name}["']""")
    return re.compile(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])")


def test_the_columns_are_known() -> None:
    columns = _columns()
    assert {"anatomy", "_id", "annotator", "order", "start_x"} <= set(columns)
    assert len(_sources()) > 50


@pytest.mark.parametrize("column", _columns())
def test_no_module_outside_mapping_names_the_column(column: str) -> None:
    pattern = _patterns(column)
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path, lines in _texts()
            for n, line in enumerate(lines, start=1)
            if pattern.search(line)]
    assert hits == []


def test_the_grep_would_see_a_column(tmp_path: Path) -> None:
    """The patterns find a column where a module would name it."""
    assert _patterns("anatomy").search('tally = row["anatomy"]')
    assert _patterns("order").search("number = cells['order']")
    assert _patterns("order").search('<xsl:value-of select="column[@name=\'order\']"/>')
    assert not _patterns("order").search('f"{order}f"')
    assert not _patterns("_id").search("tracking_id = 1")
