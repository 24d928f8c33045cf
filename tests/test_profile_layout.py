"""The series layout and the OHIF option as a profile states them (issue 12 items 1 and 2):
by default every SR has its own series (OHIF shows one SR per series), ``series = "study"``
shares one per study, and ``document.ohif = true`` is ``convert --ohif``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest

from conftest import FIXTURES, ROOT
from csv2sr.conversion.batch import convert
from csv2sr.mapping.load import load_profile
from profilegen import TEST_PROFILES, generate_rows, profile_path, write_table

CCC2017 = ROOT / "src" / "csv2sr" / "mapping" / "profiles" / "ccc2017.toml"


def _series(outdir: Path) -> list[tuple[str, str]]:
    """(Study, Series Instance UID) of every SR under ``outdir/sr``."""
    found = []
    for path in sorted((outdir / "sr").rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found.append((str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)))
    return found


def _without_series_key(name: str, folder: Path, layout: str | None) -> Path:
    """The test profile ``name`` with its ``series`` line removed (or set to ``layout``)."""
    lines, section = [], ""
    for line in profile_path(name).read_text().splitlines():
        if line.startswith("["):
            section = line
        if not (section == "[document]" and line.startswith("series = ")):
            lines.append(line)
    if layout is not None:
        at = lines.index("[document]") + 1
        lines.insert(at, f'series = "{layout}"')
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", TEST_PROFILES)
def test_default_layout_is_a_series_per_sr_and_study_shares_one(
    name: str, tmp_path: Path
) -> None:
    default = _without_series_key(name, tmp_path, None)
    spec = load_profile(default)
    assert spec.document.series == "document"
    table = write_table(tmp_path / "t.csv", spec, generate_rows(spec, 40, seed=5))
    assert convert(table, tmp_path / "doc", profile=default, jobs=1).rejected == 0
    per_sr = _series(tmp_path / "doc")
    assert len(per_sr) > 1
    assert len({series for _, series in per_sr}) == len(per_sr)  # every SR its own series

    study = _without_series_key(name, tmp_path, "study")
    assert convert(table, tmp_path / "study", profile=study, jobs=1).rejected == 0
    shared = _series(tmp_path / "study")
    by_study: dict[str, set[str]] = {}
    for study_uid, series in shared:
        by_study.setdefault(study_uid, set()).add(series)
    assert all(len(s) == 1 for s in by_study.values())
    assert len(set().union(*by_study.values())) == len(by_study)  # one series per study


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "sr").rglob("*.dcm"))}


def test_document_ohif_in_the_profile_is_convert_ohif(tmp_path: Path) -> None:
    text = CCC2017.read_text()
    assert "\n[document]\n" in text
    with_ohif = tmp_path / "ccc2017.toml"
    with_ohif.write_text(text.replace("\n[document]\n", "\n[document]\nohif = true\n"))
    assert load_profile(with_ohif).document.ohif
    sample = FIXTURES / "ccc2017-sample.csv"
    convert(sample, tmp_path / "flag", jobs=1, ohif=True)
    convert(sample, tmp_path / "profile", profile=with_ohif, jobs=1)
    convert(sample, tmp_path / "plain", jobs=1)
    assert _tree(tmp_path / "profile") == _tree(tmp_path / "flag")
    assert _tree(tmp_path / "profile") != _tree(tmp_path / "plain")
