"""The validator keeps its promises under bad input: each file's findings are its own.

Issue 9 ("Hangs, tracebacks and unclear messages"), proven on generated inputs:

* random byte mutations, truncations and insertions of real SRs (csv2sr's, the 2018 TCIA
  reference, the real dcmjs SR) never make a check raise, and in a batch run by worker
  processes every file gets exactly the findings it gets alone (one file with a corrupt
  meta header used to turn its whole batch of 32 into "internal error");
* a content tree deeper than the checked bound is one named error with its item id;
* dciodvfy crashing (the real binary segfaults on a 100,000-level tree), timing out (a
  FIFO it blocks on) or failing silently is an error finding from source dciodvfy;
* symbolic link loops, dangling links, unreadable folders and FIFOs in a walk are
  findings (exit 1), never silent skips; non-DICOM files in a walk are listed as skipped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import csv2sr.validate as validate_module
from csv2sr.cli import app
from csv2sr.conversion.batch import convert
from csv2sr.validate import validate_files
from csv2sr.validate.checks import check_file
from csv2sr.validate.container import MAX_DEPTH
from csv2sr.validate.dciodvfy import crash_finding, run_dciodvfy
from csv2sr.validate.findings import Finding, Severity, Source

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "fixtures" / "ccc2017-sample.csv"
WILD_SR = ROOT.parent / "shared" / "data" / "sr-wild" / "ccc2018_bidirectional_sr.dcm"
REFERENCE_SR = ROOT.parent / "shared" / "data" / "ccc2017" / "reference-sr" / "order-0001.dcm"
runner = CliRunner()


@pytest.fixture(scope="module")
def sample_srs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("isolation")
    assert convert(SAMPLE_CSV, out, jobs=1).ok
    return sorted((out / "sr").rglob("*.dcm"))


@pytest.fixture(scope="module")
def sources(sample_srs: list[Path]) -> list[bytes]:
    """Real SRs of three writers: csv2sr, the 2018 pipeline (pixelmed) and dcmjs."""
    found = [sample_srs[0].read_bytes()]
    found.extend(p.read_bytes() for p in (REFERENCE_SR, WILD_SR) if p.is_file())
    return found


# -- generated inputs ------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random defect: flipped bytes (often in the meta header), a cut, an insertion."""
    buffer = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # the File Meta Information, where a bad VR or length breaks pydicom
        for _ in range(rng.randint(1, 4)):
            buffer[rng.randrange(128, min(len(buffer), 400))] = rng.randrange(256)
    elif kind == 1:
        for _ in range(rng.randint(1, 8)):
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
    elif kind == 2:
        del buffer[rng.randrange(len(buffer)):]
    else:
        at = rng.randrange(len(buffer))
        buffer[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(buffer)


def corrupt_meta(data: bytes) -> bytes:
    """The VR of Transfer Syntax UID (0002,0010) made unknown: pydicom raises
    NotImplementedError, which used to fail every file of the worker's batch."""
    at = data.index(b"\x02\x00\x10\x00UI")
    return data[:at + 4] + b"\x55\x8b" + data[at + 6:]


def test_corrupt_meta_header_is_that_files_finding(sample_srs: list[Path]) -> None:
    path = sample_srs[0].with_name("meta.dcm")
    path.write_bytes(corrupt_meta(sample_srs[0].read_bytes()))
    findings = check_file(path)
    path.unlink()
    assert [(f.severity, f.source) for f in findings] == [(Severity.ERROR, Source.CSV2SR)]
    assert "File Meta Information" in findings[0].message
    assert "NotImplementedError" in findings[0].message


def test_seeded_mutations_never_raise(sources: list[bytes], tmp_path: Path) -> None:
    """800 mutated files of the three writers: each gives a list of findings."""
    rng = random.Random(20261201)
    for number in range(800):
        path = tmp_path / f"m{number}.dcm"
        path.write_bytes(mutate(sources[number % len(sources)], rng))
        findings = check_file(path)  # raises: the test fails
        assert all(isinstance(f, Finding) for f in findings)
        assert not any("internal error" in f.message for f in findings), findings


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_mutations_never_raise(
    data: st.DataObject, sources: list[bytes], tmp_path: Path
) -> None:
    source = data.draw(st.sampled_from(sources))
    cut = data.draw(st.integers(0, len(source)))
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(source) - 1),
                                         st.integers(0, 255)), max_size=6))
    buffer = bytearray(source)
    for at, value in edits:
        buffer[at] = value
    path = tmp_path / "h.dcm"
    path.write_bytes(bytes(buffer[:cut] if data.draw(st.booleans()) else buffer))
    findings = check_file(path)
    assert not any("internal error" in f.message for f in findings), findings


def test_batch_in_worker_processes_gives_each_file_its_own_findings(
    sample_srs: list[Path], sources: list[bytes], tmp_path: Path
) -> None:
    """64 files (two worker processes, chunks of 4): good SRs, mutated SRs and corrupt
    meta headers mixed; each file's findings in the batch equal its findings alone."""
    rng = random.Random(7)
    folder = tmp_path / "batch"
    folder.mkdir()
    for number in range(64):
        original = sample_srs[number % len(sample_srs)].read_bytes()
        data = (corrupt_meta(original) if number % 9 == 0
                else mutate(sources[number % len(sources)], rng) if number % 3 == 0
                else original)
        (folder / f"f{number:02d}.dcm").write_bytes(data)
    report = validate_files([folder], jobs=2, use_dciodvfy=False)
    assert len(report.files) == 64
    for file in report.files:
        alone = check_file(Path(file.path))
        assert sorted(file.findings, key=Finding.sort_key) == sorted(alone, key=Finding.sort_key)
        assert not any("internal error" in f.message for f in file.findings)
    good = [f for f in report.files if int(Path(f.path).stem[1:]) % 3]
    assert good and all(f.passed for f in good)


def test_a_task_that_dies_is_retried_file_by_file(
    sample_srs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a task dies (a worker killed), only the file that kills it is reported."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    for number in range(30):
        shutil.copy(sample_srs[number % len(sample_srs)], folder / f"f{number:02d}.dcm")
    real = validate_module.check_files

    def dies_on_f07(paths: list[str]) -> list[list[Finding]]:
        if any(p.endswith("f07.dcm") for p in paths):
            raise RuntimeError("worker killed")
        return real(paths)

    monkeypatch.setattr(validate_module, "check_files", dies_on_f07)
    report = validate_files([folder], jobs=1, use_dciodvfy=False)
    failed = [Path(f.path).name for f in report.files if not f.passed]
    assert failed == ["f07.dcm"]
    assert "internal error" in report.files[7].findings[0].message


# -- deep content trees ----------------------------------------------------------------

ITEM = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def _element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    value += b" " * (len(value) % 2)
    return struct.pack("<HH", group, element) + vr + struct.pack("<H", len(value)) + value


def _sequence(element: int) -> bytes:
    return struct.pack("<HH", 0x0040, element) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF)


def deepen(data: bytes, depth: int) -> bytes:
    """Add a chain of ``depth`` nested CONTAINERs as the last child of the root
    (explicit VR little endian, undefined lengths; the root's Content Sequence (0040,A730)
    is the last element of a csv2sr SR, so only its length changes)."""
    title = (_sequence(0xA043) + ITEM + _element(8, 0x100, b"SH", b"111001")
             + _element(8, 0x102, b"SH", b"DCM") + _element(8, 0x104, b"LO", b"Document Title")
             + ITEM_END + SEQ_END)
    head = (_element(0x40, 0xA010, b"CS", b"CONTAINS")
            + _element(0x40, 0xA040, b"CS", b"CONTAINER") + title
            + _element(0x40, 0xA050, b"CS", b"SEPARATE"))
    chain = (ITEM + head + (_sequence(0xA730) + ITEM + head) * (depth - 1)
             + (ITEM_END + SEQ_END) * (depth - 1) + ITEM_END)
    at = data.index(struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0")
    length = struct.unpack_from("<I", data, at + 8)[0]
    assert at + 12 + length == len(data), "the root Content Sequence is not last"
    return data[:at + 8] + struct.pack("<I", length + len(chain)) + data[at + 12:] + chain


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000])
def test_deep_content_tree_is_one_named_finding(
    depth: int, sample_srs: list[Path], tmp_path: Path
) -> None:
    path = tmp_path / "deep.dcm"
    original = sample_srs[0].read_bytes()
    children = 8  # the root's children in a csv2sr SR: the chain is item 1.9
    path.write_bytes(deepen(original, depth))
    findings = check_file(path)
    assert len(findings) == 1, findings
    finding = findings[0]
    assert finding.severity is Severity.ERROR
    assert finding.item.startswith(f"1.{children + 1}.1.1")
    assert f"nested deeper than {MAX_DEPTH} levels at content item {finding.item}" in (
        finding.message)


def test_content_tree_within_the_bound_is_checked(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    path = tmp_path / "deep.dcm"
    path.write_bytes(deepen(sample_srs[0].read_bytes(), 40))
    findings = check_file(path)
    assert not any(f.severity is Severity.ERROR for f in findings), findings


# -- dciodvfy that does not end normally -------------------------------------------------


def test_dciodvfy_crash_is_an_error_finding(
    dciodvfy: Path, sample_srs: list[Path], tmp_path: Path
) -> None:
    """The real dciodvfy overflows its stack on a 100,000-level tree (SIGSEGV, no output)."""
    path = tmp_path / "deep.dcm"
    path.write_bytes(deepen(sample_srs[0].read_bytes(), 100_000))
    said = run_dciodvfy(dciodvfy, path)
    crashes = [f for f in said if "crashed" in f.message]
    assert [(f.severity, f.source) for f in crashes] == [(Severity.ERROR, Source.DCIODVFY)]
    assert "SIGSEGV" in crashes[0].message
    report = validate_files([path], jobs=1)
    assert not report.ok()
    assert {f.source for f in report.files[0].findings if f.severity is Severity.ERROR} == {
        Source.CSV2SR, Source.DCIODVFY}


def test_dciodvfy_timeout_is_an_error_finding(dciodvfy: Path, tmp_path: Path) -> None:
    """dciodvfy blocks opening a FIFO nobody writes to: stopped at the timeout."""
    fifo = tmp_path / "blocks.dcm"
    os.mkfifo(fifo)
    said = run_dciodvfy(dciodvfy, fifo, timeout=1.0)
    assert [(f.severity, f.source) for f in said] == [(Severity.ERROR, Source.DCIODVFY)]
    assert "did not finish within 1 s" in said[0].message


@pytest.mark.parametrize(("returncode", "lines", "expected"), [
    (-11, [], "crashed (SIGSEGV)"),
    (-9, ["Warning - x"], "crashed (SIGKILL)"),
    (3, [], "exited with status 3 and printed nothing"),
    (1, ["Warning - x"], "exited with status 1 and reported no error"),
    (1, ["Error - x"], None),
    (0, [], None),
])
def test_dciodvfy_exit_status_without_errors(
    returncode: int, lines: list[str], expected: str | None
) -> None:
    from csv2sr.validate.dciodvfy import parse_output  # noqa: PLC0415

    crash = crash_finding(returncode, parse_output("\n".join(lines), returncode))
    if expected is None:
        assert crash is None
    else:
        assert crash is not None and crash.severity is Severity.ERROR
        assert expected in crash.message


# -- what a walk cannot read ---------------------------------------------------------------


def _tree_with_bad_entries(sample_srs: list[Path], root: Path) -> Path:
    folder = root / "sr"
    (folder / "a").mkdir(parents=True)
    shutil.copy(sample_srs[0], folder / "a" / "good.dcm")
    shutil.copy(sample_srs[1], folder / "good2.dcm")
    (folder / "a" / "up").symlink_to("..")            # loop through a folder
    (folder / "self.dcm").symlink_to("self.dcm")      # loop on itself
    (folder / "dangling.dcm").symlink_to("gone.dcm")  # dangling
    os.mkfifo(folder / "pipe.dcm")                    # would block a reader
    (folder / "manifest.csv").write_text("line,order\n", encoding="utf-8")
    return folder


def test_unreadable_entries_are_findings_and_fail_the_run(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    folder = _tree_with_bad_entries(sample_srs, tmp_path)
    result = runner.invoke(app, ["validate", str(folder), "--no-dciodvfy", "--format", "json",
                                 "--quiet"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    by_name = {f["relative"]: f for f in document["files"]}
    expected = {
        "a/up": "symbolic link loop",
        "self.dcm": "symbolic link loop",
        "dangling.dcm": "dangling symbolic link to gone.dcm",
        "pipe.dcm": "a FIFO",
    }
    for name, words in expected.items():
        findings = by_name[name]["findings"]
        assert [f["severity"] for f in findings] == ["error"], name
        assert words in findings[0]["message"], (name, findings)
    assert by_name["a/good.dcm"]["passed"] and by_name["good2.dcm"]["passed"]
    assert [s["relative"] for s in document["skipped"]] == ["manifest.csv"]
    assert document["summary"]["skipped"] == 1


def test_unreadable_folder_is_a_finding(sample_srs: list[Path], tmp_path: Path) -> None:
    """A folder without read permission.  Root reads anything, so as root the run drops
    the two capabilities that bypass file modes (setpriv, util-linux)."""
    folder = tmp_path / "sr"
    (folder / "locked").mkdir(parents=True)
    shutil.copy(sample_srs[0], folder / "ok.dcm")
    shutil.copy(sample_srs[1], folder / "locked" / "hidden-by-mode.dcm")
    (folder / "locked").chmod(0)
    command = [sys.executable, "-m", "csv2sr", "validate", str(folder), "--no-dciodvfy",
               "--format", "json", "--quiet"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is missing")
        caps = "-dac_override,-dac_read_search"
        command = [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", "--", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              cwd=ROOT)
    finally:
        (folder / "locked").chmod(0o755)
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    by_name = {f["relative"]: f for f in document["files"]}
    assert by_name["ok.dcm"]["passed"]
    [finding] = by_name["locked"]["findings"]
    assert finding["severity"] == "error"
    assert "folder cannot be read: Permission denied" in finding["message"]


def test_a_file_named_on_the_command_line_is_always_checked(tmp_path: Path) -> None:
    named = tmp_path / "manifest.csv"
    named.write_text("line,order\n", encoding="utf-8")
    report = validate_files([named], use_dciodvfy=False)
    assert report.skipped == []
    assert [f.message for f in report.files[0].findings] == [
        "not a DICOM file: no 128-byte preamble followed by 'DICM' (PS3.10 7.1)"]
