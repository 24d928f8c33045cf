"""SRs other tools write (issue 13): valid by dciodvfy, no false alarm, nothing dropped.

The corpus is made by the real libraries (tests/corpus.py): highdicom, Cornerstone3D's
adapter over dcmjs (node, tests/js), dcmqi's tid1500writer, plus the real dcmjs SR of
../shared/data/sr-wild/.  Each file is first shown to pass dciodvfy with no error (and
pixelmed, whose remaining errors are listed with why they are not defects csv2sr shares);
then csv2sr validate gives exactly the findings listed here (warnings only where PS3.16
Table 8-1 says so), and export exits 0 with a row for every measurement and for every
measurement group without one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import corpus
from csv2sr import tools
from csv2sr.cli import app
from csv2sr.export import GENERIC_COLUMNS, ProblemKind, export_table, write_table
from csv2sr.validate import pixelmed as pixelmed_runner
from csv2sr.validate import validate_files
from csv2sr.validate.checks import check_file
from csv2sr.validate.dciodvfy import run_dciodvfy
from csv2sr.validate.findings import Severity, Source

runner = CliRunner()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> corpus.Corpus:
    return corpus.make_corpus(tmp_path_factory.mktemp("corpus"))


WRITERS = {
    "highdicom-planar-2d.dcm": None, "highdicom-planar-3d.dcm": None,
    "highdicom-segments.dcm": None, "highdicom-enhanced.dcm": None,
    "dcmjs-cornerstone3d.dcm": "dcmjs", "dcmqi-liver.dcm": "dcmqi",
    "dcmqi-qualitative.dcm": "dcmqi", "sr-wild-ccc2018.dcm": "sr-wild",
}
"""Corpus file -> the writer whose absence skips it (highdicom is always there)."""


def corpus_file(made: corpus.Corpus, name: str) -> Path:
    writer = WRITERS[name]
    if name not in made.files:
        pytest.skip(made.missing.get(writer or "", f"{name} was not made"))
    return made.files[name]


def _srt(item: str, code: str) -> tuple[str, str, str]:
    return ("warning", item, f"code ({code},SRT): the SNOMED-RT designator SRT is "
                             "deprecated; use SCT (PS3.16 Table 8-1)")


OWN_FINDINGS: dict[str, list[tuple[str, str, str]]] = {
    "highdicom-planar-2d.dcm": [],
    "highdicom-planar-3d.dcm": [],
    "highdicom-segments.dcm": [],
    "highdicom-enhanced.dcm": [],
    "dcmjs-cornerstone3d.dcm": [],
    "dcmqi-liver.dcm": [_srt("1.6.1.4", "T-D0060"), _srt("1.6.1.8", "T-62000"),
                        _srt("1.6.1.9.2", "R-00317"), _srt("1.6.1.10.1", "G-A437"),
                        _srt("1.6.1.11", "G-D705")],
    "dcmqi-qualitative.dcm": [_srt("1.6.1.4", "M-80003"), _srt("1.6.1.9", "T-00317"),
                              _srt("1.6.1.10.1", "R-00317")],
    "sr-wild-ccc2018.dcm": [
        _srt("1.3", "P0-0099A"), _srt("1.5.1.3", "G-A185"), _srt("1.5.1.4", "G-A186"),
        _srt("1.5.1.5", "39607008"), _srt("1.5.1.5", "G-C0E3"),
        ("warning", "1.5.1.6", "Finding (121071, DCM) must be related by CONTAINS, not HAS "
                               "CONCEPT MOD (PS3.16 TID 1501, TID 1410 and TID 1411 row 3b)"),
        ("info", "1.3", 'Procedure reported (P0-0099A,SRT,"Imaging procedure") is not in '
                        "CID 100 (PS3.16 TID 1500 row 4); pixelmed reports this as an error"),
    ],
}
"""csv2sr's own findings, exactly.  The warnings are the deprecated SRT designator
(PS3.16 Table 8-1 lists SRT as retired; dciodvfy says the same of each; dcmjs wrote
39607008, a SNOMED CT id, under SRT) and the real dcmjs SR's Finding related by HAS CONCEPT
MOD where TID 1501 row 3b says CONTAINS (pixelmed reports the same, as an error)."""

PIXELMED_TIMEOUT = 1200.0
"""pixelmed compiles its rule file in each JVM (tens of seconds idle, minutes on a loaded
machine); a test waits for it rather than fail for the load."""

PIXELMED_ERRORS: dict[str, list[tuple[str, str]]] = {
    "highdicom-planar-2d.dcm": [
        ("1.14.3.5.1", "Incorrect relationship - expected HAS CONCEPT MOD - found HAS "
                       "PROPERTIES")],
    "highdicom-segments.dcm": [
        ("1.14.1.8.1", "Incorrect relationship - expected HAS CONCEPT MOD - found HAS "
                       "PROPERTIES")],
    "highdicom-enhanced.dcm": [("", "Missing conditional content item")] * 2,
    "sr-wild-ccc2018.dcm": [
        ("1.3", 'Code (P0-0099A,SRT,"Imaging procedure") not found in context group 100'),
        ("1.5.1.6", "Incorrect relationship - expected CONTAINS - found HAS CONCEPT MOD")],
}
"""pixelmed 20220618's errors, all known (docs/validation.md, "pixelmed's errors on valid
SRs", gives the evidence from pixelmed's own rule file): its TID 300 row 2 (a CODE of any
concept name, HAS CONCEPT MOD) claims the Normality item that TID 310 row 1 includes under
HAS PROPERTIES; it chooses TID 1410 or TID 1501 once for all the groups of an Imaging
Measurements container, so a qualitative-only TID 1501 group beside a TID 1410 group is
checked as TID 1410 and misses its region (:func:`test_pixelmed_chooses_the_template_per_container`
proves it); the real dcmjs SR has a procedure outside CID 100 (csv2sr: info) and its
Finding as HAS CONCEPT MOD (csv2sr: a warning)."""


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_corpus_file_passes_dciodvfy(name: str, made: corpus.Corpus, dciodvfy: Path) -> None:
    said = run_dciodvfy(dciodvfy, corpus_file(made, name))
    assert [f.message for f in said if f.severity is Severity.ERROR] == []
    assert any(f.message.startswith("IOD: ") for f in said)


def test_corpus_pixelmed_errors_are_the_known_ones(made: corpus.Corpus) -> None:
    java, jar = tools.find_java(), tools.find_pixelmed_jar()
    if java is None or jar is None:
        pytest.skip("pixelmed needs java and a pixelmed jar (apt-get install libpixelmed-java)")
    results = pixelmed_runner.run_pixelmed(java, jar, list(made.files.values()),
                                           timeout=PIXELMED_TIMEOUT)
    for name, path in made.files.items():
        errors = sorted((f.item, f.message.rsplit(": ", 1)[-1]) for f in results[str(path)]
                        if f.severity is Severity.ERROR)
        assert errors == sorted(PIXELMED_ERRORS.get(name, [])), name


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_corpus_file_own_findings_are_exactly_these(name: str, made: corpus.Corpus) -> None:
    own = sorted((f.severity.value, f.item, f.message)
                 for f in check_file(corpus_file(made, name)))
    assert own == sorted(OWN_FINDINGS[name])


def test_validate_the_whole_corpus_exits_0(made: corpus.Corpus, tmp_path: Path) -> None:
    folder = made.folder
    (folder / "README.txt").write_text("what made these SRs\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(folder), "--format", "json", "--quiet",
                                 *([str(corpus.WILD)] if corpus.WILD.is_file() else [])])
    (folder / "README.txt").unlink()
    assert result.exit_code == 0, result.stdout[-2000:]
    document = json.loads(result.stdout)
    errors = [(f["relative"], g["source"], g["message"]) for f in document["files"]
              for g in f["findings"] if g["severity"] == "error"]
    assert errors == []
    assert len(document["files"]) == len(made.files)
    assert [s["relative"] for s in document["skipped"]] == ["README.txt"]


# -- export ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(made: corpus.Corpus) -> pd.DataFrame:
    frame = export_table(list(made.files.values()), jobs=1)
    frame["name"] = [next(n for n, p in made.files.items() if str(p) == f)
                     for f in frame["file"]]
    return frame


def test_export_exits_0_on_every_corpus_file(made: corpus.Corpus, tmp_path: Path) -> None:
    for name, path in made.files.items():
        table = tmp_path / f"{name}.csv"
        done = runner.invoke(app, ["export", str(path), "-o", str(table), "--quiet"])
        assert done.exit_code == 0, (name, done.output)
        result = write_table([path], tmp_path / "t.csv", jobs=1)
        assert result.ok and all(p.kind is ProblemKind.NOTE for p in result.problems)


ROWS = {
    "highdicom-planar-2d.dcm": [("group", "1410", "2d-POINT", "", "SCOORD", "POINT"),
                                ("measurement", "1410", "2d-POLYLINE", "SCT:42798000",
                                 "SCOORD", "POLYLINE"),
                                ("measurement", "1410", "2d-CIRCLE", "SCT:42798000",
                                 "SCOORD", "CIRCLE"),
                                ("measurement", "1410", "2d-ELLIPSE", "SCT:42798000",
                                 "SCOORD", "ELLIPSE"),
                                ("measurement", "1501", "1501-image", "SCT:81827009", "", ""),
                                ("measurement", "1501", "1501-image", "SCT:246205007",
                                 "SCOORD", "MULTIPOINT")],
    "highdicom-planar-3d.dcm": [("measurement", "1501", "1501-3d-coordinates",
                                 "SCT:246205007", "SCOORD3D", "MULTIPOINT"),
                                ("measurement", "1501", "1501-3d-coordinates",
                                 "SCT:118565006", "SCOORD3D", "ELLIPSOID"),
                                ("group", "1410", "3d-POINT", "", "SCOORD3D", "POINT"),
                                ("group", "1410", "3d-POLYLINE", "", "SCOORD3D", "POLYLINE"),
                                ("measurement", "1410", "3d-POLYGON", "SCT:42798000",
                                 "SCOORD3D", "POLYGON"),
                                ("measurement", "1410", "3d-ELLIPSE", "SCT:42798000",
                                 "SCOORD3D", "ELLIPSE")],
    "highdicom-segments.dcm": [("measurement", "1411", "1411-segment-1", "SCT:118565006",
                                "", ""),
                               ("measurement", "1411", "1411-segment-1", "SCT:373098007",
                                "", ""),
                               ("group", "1411", "1411-segment-2-only", "", "", ""),
                               ("measurement", "1411", "1411-surface-ELLIPSOID",
                                "SCT:118565006", "SCOORD3D", "ELLIPSOID"),
                               ("group", "1411", "1411-surface-POINT", "", "SCOORD3D",
                                "POINT"),
                               ("group", "1411", "1411-surface-POLYGON", "", "SCOORD3D",
                                "POLYGON"),
                               ("measurement", "1411", "1411-regions", "SCT:118565006",
                                "SCOORD", "POLYLINE")],
    "highdicom-enhanced.dcm": [("group", "1501", "1501-qualitative-only", "", "", ""),
                               ("measurement", "1410", "1410-enhanced", "SCT:42798000",
                                "SCOORD", "POLYLINE")],
}
"""Every highdicom group as rows: (row_type, template, tracking id, measurement,
coordinate type, graphic type)."""


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_group_of_highdicom_is_a_row(name: str, exported: pd.DataFrame) -> None:
    rows = exported[exported["name"] == name]
    got = list(rows[["row_type", "template", "tracking_identifier", "measurement",
                     "coordinate_type", "graphic_type"]].itertuples(index=False, name=None))
    assert got == ROWS[name]


def test_segment_references_are_exported_as_such(
    exported: pd.DataFrame, made: corpus.Corpus
) -> None:
    """TID 1411 by segment: the SEG instance and the segment number, no points."""
    seg = corpus.uid("seg")
    rows = exported[exported["tracking_identifier"].str.startswith("1411-segment")]
    assert set(rows["referenced_sop_instance_uid"]) == {seg}
    assert set(rows["referenced_sop_class_uid"]) == {"1.2.840.10008.5.1.4.1.1.66.4"}
    assert list(rows["referenced_segment_number"]) == ["1", "1", "2"]
    assert set(rows["points"]) == {""}
    dcmqi = exported[exported["name"].str.startswith("dcmqi")]
    if not dcmqi.empty:
        assert set(dcmqi["referenced_sop_instance_uid"]) == {seg}
        assert set(dcmqi["referenced_segment_number"]) == {"1"}


def test_qualitative_evaluations_are_columns_and_nested(
    made: corpus.Corpus, exported: pd.DataFrame, tmp_path: Path
) -> None:
    column = "qualitative_RADLEX_RID5741"
    solid = exported[exported[column] != ""]
    assert set(solid["tracking_identifier"]) == {"2d-POINT", "1501-image", "1411-segment-1",
                                                 "1501-qualitative-only"}
    assert set(solid[column]) == {"RADELEMENT:RDE1301.0"}
    assert set(solid[column + "_meaning"]) == {"solid"}
    path = made.files["highdicom-enhanced.dcm"]
    table = tmp_path / "t.jsonl"
    write_table([path], table, jobs=1)
    first = json.loads(table.read_text(encoding="utf-8").splitlines()[0])
    assert first["row_type"] == "group"
    assert [(q["concept"], q["value"], q["value_type"]) for q in first["qualitative"]] == [
        ("RADLEX:RID5741", "RADELEMENT:RDE1301.0", "CODE")]
    if "dcmqi-qualitative.dcm" in made.files:
        row = exported[exported["name"] == "dcmqi-qualitative.dcm"].iloc[0]
        assert row["qualitative_99TEST_123"] == "Bad | 99TEST:124"  # TEXT, then CODE
        assert row["qualitative_99TEST_123_meaning"] == "Bad | Absent"


def test_measurement_context_columns(exported: pd.DataFrame) -> None:
    by_tracking = exported.set_index(["tracking_identifier", "measurement"])
    segment = by_tracking.loc[("1411-segment-1", "SCT:118565006")]
    assert (segment["algorithm_name"], segment["algorithm_version"]) == ("volumetry", "3.0")
    assert segment["device_observer_name"] == "CAD"
    assert segment["observer_name"] == "Reader^One"
    assert segment["finding_site"] == "SCT:10200004"


def test_cornerstone_tools_all_exported(made: corpus.Corpus, exported: pd.DataFrame) -> None:
    corpus_file(made, "dcmjs-cornerstone3d.dcm")
    rows = exported[exported["name"] == "dcmjs-cornerstone3d.dcm"]
    tools = {t.split(":")[-1] for t in rows["tracking_identifier"]}
    assert tools == set(corpus.CORNERSTONE_TOOLS)
    length = rows[rows["measurement"] == "SCT:410668003"].iloc[0]
    assert (length["value"], length["graphic_type"]) == ("6", "POLYLINE")
    assert length["points"] == "2.5 3.5 9.5 7.5"  # Cornerstone adds the half-pixel origin


def test_generic_header_is_pinned() -> None:
    """The generic export's fixed columns are stable across versions (docs/export.md)."""
    assert GENERIC_COLUMNS == (
        "file", "sop_instance_uid", "series_instance_uid", "study_instance_uid",
        "patient_id", "instance_number", "study_date", "study_time", "content_date",
        "content_time", "timezone_offset", "observer_name", "observer_login_name",
        "observer_role", "observer_role_meaning", "procedure_reported",
        "procedure_reported_meaning", "template", "group_item", "item",
        "tracking_identifier", "tracking_uid", "finding", "finding_meaning", "finding_site",
        "finding_site_meaning", "measurement", "measurement_meaning", "value", "unit",
        "coordinate_type", "graphic_type", "points", "referenced_sop_class_uid",
        "referenced_sop_instance_uid", "referenced_series_instance_uid",
        "referenced_frame_numbers", "frame_of_reference_uid", "row_type",
        "referenced_segment_number", "derivation", "derivation_meaning", "method",
        "method_meaning", "algorithm_name", "algorithm_version", "device_observer_uid",
        "device_observer_name",
    )
    docs = (corpus.ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    for column in GENERIC_COLUMNS:
        assert f"`{column}`" in docs, column


def test_own_findings_same_through_validate_files(made: corpus.Corpus) -> None:
    report = validate_files(list(made.files.values()), jobs=1, use_dciodvfy=False)
    for file in report.files:
        assert not [f for f in file.findings if f.severity is Severity.ERROR
                    and f.source is Source.CSV2SR], file.path


def test_pixelmed_chooses_the_template_per_container(tmp_path: Path) -> None:
    """The evidence for the highdicom-enhanced errors above: the same two groups pass
    pixelmed each alone and fail it only together (TID 1501 qualitative-only beside TID 1410),
    so the errors are pixelmed's template choice, not a defect of either group."""
    java, jar = tools.find_java(), tools.find_pixelmed_jar()
    if java is None or jar is None:
        pytest.skip("pixelmed needs java and a pixelmed jar (apt-get install libpixelmed-java)")
    slices = corpus.ct_slices()
    files = {name: corpus.write_enhanced_groups(slices, kinds, tmp_path / f"{name}.dcm")
             for name, kinds in {"qualitative": ("1501",), "planar": ("1410",),
                                 "both": ("1501", "1410")}.items()}
    results = pixelmed_runner.run_pixelmed(java, jar, list(files.values()),
                                           timeout=PIXELMED_TIMEOUT)
    errors = {name: [f.message.rsplit(": ", 1)[-1] for f in results[str(path)]
                     if f.severity is Severity.ERROR] for name, path in files.items()}
    assert errors == {"qualitative": [], "planar": [],
                      "both": ["Missing conditional content item"] * 2}
