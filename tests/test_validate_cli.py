"""``csv2sr validate``: exit codes, JSON schema, JUnit XML, per-file reports, tool notes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from typer.testing import CliRunner

import csv2sr
import csv2sr.validate as validate_module
from csv2sr import tools
from csv2sr.cli import app
from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile
from csv2sr.validate import validate_files
from csv2sr.validate.findings import FileReport
from csv2sr.validate.report import report_name, report_names
from records import order

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "ccc2017-sample.csv"
runner = CliRunner()


@pytest.fixture(scope="module")
def sr_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four valid SRs in the convert layout: sr/<PatientID>/order-NNNN.dcm."""
    root = tmp_path_factory.mktemp("cli") / "sr"
    profile = load_profile("ccc2017")
    rows = [r for r in read_rows(SAMPLE, profile) if isinstance(r, Record)][:4]
    for row in rows:
        folder = root / row.patient_id
        folder.mkdir(parents=True, exist_ok=True)
        encode(row, profile, CodeMode.SCT).save_as(
            folder / f"order-{order(row):04d}.dcm", enforce_file_format=True)
    return root


def test_valid_tree_exits_0_and_writes_every_report(sr_tree: Path, tmp_path: Path) -> None:
    reports, json_file, junit_file = tmp_path / "reports", tmp_path / "v.json", tmp_path / "v.xml"
    result = runner.invoke(app, [
        "validate", str(sr_tree), "--report-dir", str(reports), "--json", str(json_file),
        "--junit", str(junit_file), "--quiet", "--no-dciodvfy",
    ])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    dcm = sorted(p.relative_to(sr_tree).as_posix() for p in sr_tree.rglob("*.dcm"))
    txt = sorted(p.relative_to(reports).as_posix() for p in reports.rglob("*.txt"))
    assert txt == [name[:-4] + ".txt" for name in dcm]
    first = (reports / txt[0]).read_text()
    assert first.startswith(f"File: {dcm[0]}\n") and "Result: PASS" in first

    document = json.loads(json_file.read_text())
    assert set(document) == {"files", "skipped", "summary", "tools", "notes"}
    assert document["skipped"] == [] and document["summary"]["skipped"] == 0
    assert document["summary"]["files"] == 4 and document["summary"]["passed"] == 4
    assert document["summary"]["by_source"]["csv2sr"]["error"] == 0
    assert document["tools"]["dciodvfy"] is None and document["tools"]["csv2sr"]
    assert {"path", "findings"} <= set(document["files"][0])

    suite = etree.parse(str(junit_file)).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "0"
    assert not list(tmp_path.glob(".*.tmp")), "atomic writes leave no temporary files"


def test_reports_are_deterministic(sr_tree: Path, tmp_path: Path) -> None:
    texts = []
    for run in ("a", "b"):
        folder = tmp_path / run
        result = runner.invoke(app, ["validate", str(sr_tree), "--report-dir", str(folder),
                                     "--quiet", "--jobs", "2"])
        assert result.exit_code == 0, result.output
        texts.append({p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.txt")})
    assert texts[0] == texts[1] and texts[0]


def test_error_exits_1_and_fails_in_junit(sr_tree: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_text("not dicom")
    junit_file = tmp_path / "v.xml"
    result = runner.invoke(app, ["validate", str(sr_tree), str(bad), "--quiet",
                                 "--no-dciodvfy", "--junit", str(junit_file)])
    assert result.exit_code == 1
    suite = etree.parse(str(junit_file)).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='" + str(bad) + "']/failure")
    assert failure is not None and "not a DICOM file" in (failure.text or "")


def test_fail_on_warning(sr_tree: Path, dciodvfy: Path) -> None:
    """csv2sr SRs carry dciodvfy's accepted warnings: fine by default, failing on warning."""
    one = next(sr_tree.rglob("*.dcm"))
    assert runner.invoke(app, ["validate", str(one), "--quiet"]).exit_code == 0
    assert runner.invoke(app, ["validate", str(one), "--quiet",
                               "--fail-on", "warning"]).exit_code == 1


def test_json_to_stdout_and_text_summary(sr_tree: Path) -> None:
    result = runner.invoke(app, ["validate", str(sr_tree), "--format", "json",
                                 "--no-dciodvfy"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["summary"]["files"] == 4
    text = runner.invoke(app, ["validate", str(sr_tree), "--no-dciodvfy"])
    assert text.exit_code == 0 and "files: 4" in text.stdout and "passed: 4" in text.stdout


@pytest.mark.parametrize("arguments", [
    ["validate", "/no/such/path"],
    ["validate", "--format", "yaml", "x"],
    ["validate", "--fail-on", "info", "x"],
    ["validate"],
])
def test_usage_errors_exit_2(arguments: list[str]) -> None:
    assert runner.invoke(app, arguments).exit_code == 2


def test_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2 and "no files to validate" in result.output


def test_missing_dciodvfy_is_a_note_not_a_failure(
    sr_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "find_dciodvfy", lambda: None)
    report = validate_files([sr_tree], jobs=1)
    assert report.ok() and report.tools["dciodvfy"] is None
    assert len(report.notes) == 1 and "dciodvfy not found" in report.notes[0]
    result = runner.invoke(app, ["validate", str(sr_tree)])
    assert result.exit_code == 0
    assert result.output.count("dciodvfy not found") == 1


def test_many_files_use_worker_processes(sr_tree: Path, tmp_path: Path) -> None:
    """Above the process threshold the own checks run in a pool: same findings."""
    folder = tmp_path / "many"
    sources = sorted(sr_tree.rglob("*.dcm"))
    count = validate_module.PROCESS_THRESHOLD + 2
    for index in range(count):
        target = folder / f"f{index:03d}.dcm"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(sources[index % len(sources)].read_bytes())
    (folder / "broken.dcm").write_bytes(b"")
    report = validate_files([folder], jobs=2, use_dciodvfy=False)
    assert len(report.files) == count + 1
    assert [Path(f.path).name for f in report.files if not f.passed] == ["broken.dcm"]


def test_python_api_is_exported() -> None:
    assert csv2sr.validate_files is validate_files


def test_a_failing_task_is_a_finding_not_a_crash(
    sr_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(paths: list[str]) -> list[list[object]]:
        raise RuntimeError("worker died")

    monkeypatch.setattr(validate_module, "check_files", broken)
    report = validate_files([sr_tree], jobs=1, use_dciodvfy=False)
    assert len(report.files) == 4 and not report.ok()
    assert all("internal error" in f.findings[0].message for f in report.files)


def test_report_for_a_file_argument_is_named_after_the_file(
    sr_tree: Path, tmp_path: Path
) -> None:
    one = sorted(sr_tree.rglob("*.dcm"))[0]
    result = runner.invoke(app, ["validate", str(one), "--report-dir", str(tmp_path / "r"),
                                 "--quiet", "--no-dciodvfy"])
    assert result.exit_code == 0
    assert [p.name for p in (tmp_path / "r").iterdir()] == [one.stem + ".txt"]


def test_convert_output_folder_validates_with_its_tables_skipped(tmp_path: Path) -> None:
    """Issue 13: validate OUTDIR on a convert output: manifest.csv and rejected.csv are not
    DICOM, so they are listed as skipped (stderr, JSON, JUnit), not failures."""
    from csv2sr.conversion.batch import convert  # noqa: PLC0415

    out = tmp_path / "out"
    convert(SAMPLE, out, jobs=1)
    assert {p.name for p in out.iterdir()} >= {"manifest.csv", "rejected.csv", "sr"}
    junit = tmp_path / "v.xml"
    result = runner.invoke(app, ["validate", str(out), "--no-dciodvfy", "--format", "json",
                                 "--junit", str(junit)])
    assert result.exit_code == 0, result.stdout[-1000:]
    document = json.loads(result.stdout)
    assert [s["relative"] for s in document["skipped"]] == ["manifest.csv", "rejected.csv"]
    assert all("not DICOM" in s["reason"] for s in document["skipped"])
    assert document["summary"]["skipped"] == 2
    assert document["summary"]["files"] == len(list((out / "sr").rglob("*.dcm")))
    assert "2 file(s) skipped (not validated): manifest.csv, rejected.csv" in result.stderr
    suite = etree.parse(str(junit)).getroot().find("testsuite")
    assert suite is not None and suite.get("skipped") == "2"
    skipped_cases = [c.get("name") for c in suite.iter("testcase")
                     if c.find("skipped") is not None]
    assert [Path(n).name for n in skipped_cases] == ["manifest.csv", "rejected.csv"]
    text = runner.invoke(app, ["validate", str(out), "--no-dciodvfy"])
    assert text.exit_code == 0 and "skipped: 2" in text.stdout
    named = runner.invoke(app, ["validate", str(out / "manifest.csv"), "--no-dciodvfy"])
    assert named.exit_code == 1  # a file named on the command line is always checked


def test_two_inputs_of_the_same_name_get_two_reports(sr_tree: Path, tmp_path: Path) -> None:
    """A failing file's report is never overwritten by a passing one of the same name."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    one = sorted(sr_tree.rglob("*.dcm"))[0]
    (good / "x.dcm").write_bytes(one.read_bytes())
    (bad / "x.dcm").write_bytes(b"not dicom")
    reports, json_file = tmp_path / "r", tmp_path / "v.json"
    result = runner.invoke(app, ["validate", str(bad / "x.dcm"), str(good / "x.dcm"),
                                 "--report-dir", str(reports), "--json", str(json_file),
                                 "--quiet", "--no-dciodvfy"])
    assert result.exit_code == 1
    written = {p.name: p.read_text() for p in reports.iterdir()}
    assert len(written) == 2
    assert sorted(text.split("\n")[2].split()[1] for text in written.values()) == [
        "FAIL", "PASS"]
    document = json.loads(json_file.read_text())
    by_path = {entry["path"]: entry["report"] for entry in document["files"]}
    assert "FAIL" in (reports / by_path[str(bad / "x.dcm")]).read_text()
    assert "PASS" in (reports / by_path[str(good / "x.dcm")]).read_text()


_RELATIVE = st.lists(
    st.sampled_from(["a", "A", "b", "x.dcm", "x.DCM", "x", "x.txt", "P"]), min_size=1,
    max_size=3,
).map("/".join)


@pytest.mark.property
@settings(database=None, deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["d1", "d2", "d3"]), _RELATIVE), max_size=8))
def test_report_names_are_unique_and_stable(inputs: list[tuple[str, str]]) -> None:
    files = [FileReport(f"{root}/{relative}", relative) for root, relative in inputs]
    names = report_names(files)
    assert names == report_names(list(files)), "stable: the same inputs, the same names"
    folded = [n.casefold() for n in names]
    assert len(set(folded)) == len(folded), "one report per input, whatever the case"
    folders = {"/".join(n.split("/")[:i]) for n in folded for i in range(1, n.count("/") + 1)}
    assert not folders & set(folded), "no report is another report's folder"
    plain = [report_name(f.relative) for f in files]
    if len({p.casefold() for p in plain}) == len(plain) and not folders & {
        p.casefold() for p in plain
    }:
        assert names == plain, "names change only when they would clash"


def test_reports_have_the_mode_of_every_other_output(sr_tree: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, [
        "validate", str(sr_tree), "--report-dir", str(tmp_path / "r"), "--json",
        str(tmp_path / "v.json"), "--junit", str(tmp_path / "v.xml"), "--quiet",
        "--no-dciodvfy"])
    assert result.exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    written = [tmp_path / "v.json", tmp_path / "v.xml", *(tmp_path / "r").rglob("*.txt")]
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o666 & ~umask}


def test_a_link_inside_the_report_dir_is_not_written_through(
    sr_tree: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    reports = tmp_path / "r"
    reports.mkdir()
    patient = sorted(p.name for p in sr_tree.iterdir())[0]
    (reports / patient).symlink_to(outside, target_is_directory=True)
    result = runner.invoke(app, ["validate", str(sr_tree), "--report-dir", str(reports),
                                 "--quiet", "--no-dciodvfy"])
    assert result.exit_code == 1
    assert "symbolic link" in result.output and patient in result.output
    assert list(outside.iterdir()) == []
