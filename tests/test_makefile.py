"""The Makefile, run for real: GNU make on a copy of the tree in tmp, with the installed
interpreter (``PYTHON=``) and the copy's sources (``PYTHONPATH``), so that nothing is
written to the source tree or ../shared.  The HTML report is checked in headless Chromium.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lxml import html

from conftest import REAL_CSV, ROOT

MAKE = shutil.which("make")
CHROMIUM = Path("/usr/bin/chromium")
SAMPLE = "fixtures/ccc2017-sample.csv"
VERSION = "0.1.0"
COPIED = ("Makefile", "pyproject.toml", "src", "xslt", "fixtures")
STAGE_COMMANDS = (
    "-m csv2sr convert", "-m csv2sr validate", "-m csv2sr dumps", "-m csv2sr export",
    "-m csv2sr report", "-m csv2sr check-release", "-m csv2sr package",
)

pytestmark = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")


def _tree(dest: Path) -> Path:
    """What ``make release`` needs of the project, copied (no caches, no build output)."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


def _make(tree: Path, *args: str, python: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SOURCE_DATE_EPOCH")}
    env["PYTHONPATH"] = str(tree / "src")
    command = [str(MAKE), "-C", str(tree)]
    if python:
        command.append(f"PYTHON={sys.executable}")
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, timeout=900, check=False
    )


def _mtimes(*folders: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for f in folders for p in f.rglob("*")}


def _out(tree: Path, name: str = "ccc2017-sample") -> Path:
    return tree / "build" / name


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled fixture released with the default variables (JOBS=2)."""
    tree = _tree(tmp_path_factory.mktemp("make") / "a")
    done = _make(tree, "release", "JOBS=2")
    assert done.returncode == 0, done.stdout + done.stderr
    return tree


@pytest.fixture(scope="module")
def failed(released: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the released tree whose CSV then got a bad row, its old mtime kept."""
    tree = tmp_path_factory.mktemp("make") / "c"
    shutil.copytree(released, tree)  # times kept: the copy is as up to date as the original
    data = tree / SAMPLE
    assert _make(tree, "-q", "release").returncode == 0  # the copy is up to date
    stat = data.stat()
    bad = next(line for line in (tree / "fixtures/ccc2017-bad.csv").read_text().splitlines()
               if ",abc," in line)
    data.write_text(data.read_text().rstrip("\r\n") + "\n" + bad + "\n")
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # content changes, time does not
    question = _make(tree, "-q", "release")
    assert question.returncode == 1, "make -q must see the changed content"
    return tree, data


# ------------------------------------------------------------------ the fixture release


def test_release_writes_every_stage(released: Path) -> None:
    out = _out(released)
    rows = _rows(released / SAMPLE)
    srs = sorted((out / "sr").rglob("*.dcm"))
    assert len(srs) == len(rows) == len(_rows(out / "manifest.csv"))
    assert _rows(out / "rejected.csv") == []
    for sr in srs:
        rel = sr.relative_to(out / "sr")
        assert (out / "reports" / rel.with_suffix(".txt")).is_file()
        assert (out / "report" / "sr" / rel.with_suffix(".html")).is_file()
        dump = out / "dumps" / rel.with_suffix(".txt")
        assert dump.read_text().startswith('1: : CONTAINER: (126000,DCM,"Imaging Measurement')
    assert (out / "validation.json").is_file() and (out / "validation.junit.xml").is_file()
    assert len(_rows(out / "export.csv")) == len(rows)
    for stage in ("convert", "validate", "dumps", "export"):
        status, millis = (out / "stages" / f"{stage}.status").read_text().split()
        assert status == "0" and int(millis) >= 0
    with zipfile.ZipFile(released / "dist" / f"ccc2017-sample-{VERSION}.zip") as zf:
        names = set(zf.namelist())
    root = f"ccc2017-sample-{VERSION}"
    assert {f"{root}/manifest.csv", f"{root}/SHA256SUMS", f"{root}/report/index.html",
            f"{root}/validation.json"} <= names
    assert sum(n.endswith(".dcm") for n in names) == len(rows)
    assert sum(n.startswith(f"{root}/reports/") for n in names) == len(rows)
    assert not any("summary.xml" in n or "/stages/" in n for n in names)


def test_unpacked_zip_checks_itself_and_its_links_resolve(
    released: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(released / "dist" / f"ccc2017-sample-{VERSION}.zip") as zf:
        zf.extractall(tmp_path)
    unpacked = tmp_path / f"ccc2017-sample-{VERSION}"
    sha256sum = shutil.which("sha256sum")
    if sha256sum is not None:
        check = subprocess.run([sha256sum, "--check", "--strict", "SHA256SUMS"],
                               cwd=unpacked, capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    report = unpacked / "report"
    pages = [report / "index.html", *sorted((report / "sr").rglob("*.html"))]
    assert len(pages) == 1 + len(_rows(released / SAMPLE))
    for page in pages:
        for link in html.fromstring(page.read_bytes()).xpath("//a/@href"):
            assert (page.parent / link).resolve().is_file(), (page, link)


def test_second_release_does_no_work(released: Path) -> None:
    before = _mtimes(released / "build", released / "dist")
    assert _make(released, "-q", "release").returncode == 0
    again = _make(released, "release")
    assert again.returncode == 0, again.stderr
    assert "Nothing to be done for 'release'" in again.stdout
    assert _mtimes(released / "build", released / "dist") == before


def test_touched_csv_rebuilds_and_dry_run_tells_it(released: Path, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    shutil.copytree(released, tree)  # times kept: the copy is as up to date as the original
    assert _make(tree, "-q", "release").returncode == 0  # the copy is up to date
    csv_file = tree / SAMPLE
    os.utime(csv_file)  # now: newer than every stamp of the copied build
    before = _mtimes(tree / "build", tree / "dist")
    dry = _make(tree, "-n", "release")
    assert dry.returncode == 0, dry.stderr
    for command in STAGE_COMMANDS:
        assert command in dry.stdout, command
    assert _mtimes(tree / "build", tree / "dist") == before  # -n did nothing
    assert _make(tree, "-q", "release").returncode == 1


def test_ohif_release_rebuilds_with_ohif_srs_and_the_same_table(
    released: Path, tmp_path: Path
) -> None:
    """OHIF=1 is a convert option: it rebuilds a finished release (the option names a
    stamp), the SRs carry the Cornerstone3D Tracking Identifier, and the round-trip table
    is the default release's."""
    tree = tmp_path / "o"
    shutil.copytree(released, tree)  # times kept: the copy is as up to date as the original
    assert _make(tree, "-q", "release").returncode == 0
    dry = _make(tree, "-n", "release", "OHIF=1")
    assert f"convert '{SAMPLE}' -o build/ccc2017-sample --profile ccc2017 --ohif" in dry.stdout
    done = _make(tree, "release", "OHIF=1", "JOBS=2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _make(tree, "-q", "release", "OHIF=1").returncode == 0
    assert _make(tree, "-q", "release").returncode == 1  # and back without it
    out = _out(tree)
    manifest = _rows(out / "manifest.csv")
    first = (out / manifest[0]["path"]).read_bytes()
    assert b"Cornerstone3DTools@^0.1.0:Length:" + manifest[0]["_id"].encode() in first
    assert _rows(out / "export.csv") == _rows(_out(released) / "export.csv")


_STAGES = ("convert", "validate", "dumps", "export", "report")


@pytest.mark.parametrize(("touched", "stale"), [
    ("src/csv2sr/dicom/vr.py", _STAGES),
    ("src/csv2sr/conversion/batch.py", _STAGES),  # every stage reads what convert wrote
    ("src/csv2sr/images/enrich.py", _STAGES),
    ("src/csv2sr/validate/iod.py", ("validate", "report")),
    ("src/csv2sr/images/cross.py", ("validate", "report")),
    ("src/csv2sr/export/reader.py", ("export", "report")),
    ("src/csv2sr/release/dumps.py", ("dumps", "report")),
    ("src/csv2sr/release/summary.py", ("report",)),
    ("xslt/sr.xsl", ("report",)),
    ("src/csv2sr/formats/xslt.py", ()),
    ("src/csv2sr/publish/run.py", ()),
])
def test_a_changed_module_reruns_the_stages_that_run_it(
    released: Path, tmp_path: Path, touched: str, stale: tuple[str, ...]
) -> None:
    tree = tmp_path / "t"
    shutil.copytree(released, tree)  # times kept: the copy is as up to date as the original
    os.utime(tree / touched)  # now: newer than every stamp of the copied build
    for stage in _STAGES:
        question = _make(tree, "-q", f"build/ccc2017-sample/stages/{stage}.done")
        assert question.returncode == (1 if stage in stale else 0), (touched, stage)


def test_dry_run_from_clean_lists_every_stage_and_writes_nothing(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "n")
    dry = _make(tree, "-n", "release", "JOBS=3")
    assert dry.returncode == 0, dry.stderr
    positions = [dry.stdout.index(c) for c in STAGE_COMMANDS]
    assert positions[0] < min(positions[1:4]) and max(positions[1:4]) < positions[4]
    assert positions[4] < positions[5] < positions[6]
    assert (f"convert '{SAMPLE}' -o build/ccc2017-sample --profile ccc2017 "
            "--cache build/ccc2017-sample/cache/convert.json --jobs 3") in dry.stdout
    assert f"-o dist/ccc2017-sample-{VERSION}.zip" in dry.stdout
    assert not (tree / "build").exists() and not (tree / "dist").exists()


def test_default_target_makes_the_venv_then_releases_the_fixture(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "v")
    dry = _make(tree, "-n", python=False)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    venv = lines.index("test -x .venv/bin/python || python3 -m venv .venv")
    pip = lines.index(".venv/bin/pip install -e '.[test]'")
    convert = next(i for i, line in enumerate(lines)
                   if f".venv/bin/python -m csv2sr convert '{SAMPLE}'" in line)
    assert venv < pip < convert
    assert not (tree / ".venv").exists()


def test_zip_is_byte_identical_across_clean_releases(released: Path, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "b")  # another folder, from clean
    done = _make(tree, "release")
    assert done.returncode == 0, done.stdout + done.stderr
    name = f"dist/ccc2017-sample-{VERSION}.zip"
    assert (tree / name).read_bytes() == (released / name).read_bytes()
    cleaned = _make(tree, "clean")
    assert cleaned.returncode == 0
    assert not (tree / name).exists() and not _out(tree).exists()


def test_zip_is_the_same_whatever_the_output_folder(released: Path, tmp_path: Path) -> None:
    """Another release of the same CSV into absolute OUT and DIST folders elsewhere: the
    same zip, byte for byte (no path of the release folder is written into it)."""
    out, dist = tmp_path / "elsewhere" / "out", tmp_path / "elsewhere" / "dist"
    done = _make(released, "release", f"OUT={out}", f"DIST={dist}")
    assert done.returncode == 0, done.stdout + done.stderr
    name = f"ccc2017-sample-{VERSION}.zip"
    assert (dist / name).read_bytes() == (released / "dist" / name).read_bytes()
    assert str(tmp_path) not in (out / "validation.json").read_text()


def _edited(rows: list[str]) -> list[str]:
    """The fixture's lines with one row's length changed, one row removed, one added."""
    header, *body = rows
    cells = body[2].split(",")
    cells[5] = str(float(cells[5]) + 1.25)  # length
    added = body[0].split(",")
    added[0], added[12] = "99", "fixture009900000000000000000000"  # order, _id
    return [header, body[0], body[1], ",".join(cells), *body[3:-1], ",".join(added)]


def _built(tree: Path) -> dict[str, bytes]:
    """Every file of the build and the zip, the Makefile's own stamps and timings aside."""
    files = {}
    for folder in (tree / "build", tree / "dist"):
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(tree).as_posix()
            if path.is_file() and "/stages/" not in rel:
                files[rel] = path.read_bytes()
    summary = "build/ccc2017-sample/report/summary.xml"
    files[summary] = re.sub(rb"<timings>.*</timings>", b"", files[summary], flags=re.DOTALL)
    return files


def test_a_rerun_after_edits_writes_what_a_clean_build_writes(
    released: Path, tmp_path: Path
) -> None:
    """Rows changed, removed and added: the rerun redoes only their files (the others keep
    their times), and leaves every output, the zip included, byte for byte as a clean
    build of the edited CSV does."""
    tree = tmp_path / "rerun"
    shutil.copytree(released, tree)
    data = tree / SAMPLE
    lines = data.read_text().splitlines()
    data.write_text("\n".join(_edited(lines)) + "\n")
    before = _mtimes(tree / "build")
    done = _make(tree, "release", "JOBS=2")
    assert done.returncode == 0, done.stdout + done.stderr
    after = _mtimes(tree / "build")
    out = _out(tree)
    redone = {p.relative_to(out).as_posix() for p in after
              if before.get(p) != after[p] and p.suffix in (".dcm", ".txt", ".html")}
    edited = {"SYN-0002/order-0003", "SYN-0001/order-0099"}  # see _edited
    for rel in redone - {"report/index.html"}:
        stem = rel.removeprefix("report/").split("/", 1)[1].rsplit(".", 1)[0]
        assert stem in edited, f"{rel} was rewritten, its SR did not change"
    assert {f"sr/{stem}.dcm" for stem in edited} <= redone
    clean = _tree(tmp_path / "clean")
    (clean / SAMPLE).write_text(data.read_text())
    fresh = _make(clean, "release", "JOBS=2")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert _built(tree) == _built(clean)


def test_stage_targets_run_alone(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "s")
    assert _make(tree, "convert").returncode == 0
    out = _out(tree)
    assert (out / "manifest.csv").is_file() and not (out / "reports").exists()
    done = _make(tree, "export")
    assert done.returncode == 0, done.stderr
    assert (out / "export.csv").is_file()
    assert not (out / "reports").exists() and not (out / "dumps").exists()
    assert "-m csv2sr convert" not in done.stdout  # convert was up to date
    assert not (tree / "dist").exists()


def test_tool_targets_run_the_documented_commands(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tools")
    for target, expected in (
        ("test", f"{sys.executable} -m pytest -n auto"),
        ("lint", f"{sys.executable} -m ruff check src tests benchmarks"),
        ("bench", "for script in benchmarks/bench_*.py"),
        ("clean", "rm -rf -- 'build/ccc2017-sample'"),
    ):
        dry = _make(tree, "-n", target)
        assert dry.returncode == 0 and expected in dry.stdout, (target, dry.stdout)
    assert f"{sys.executable} -m mypy src" in _make(tree, "-n", "lint").stdout


# ------------------------------------------------------------------ failing builds


def test_changed_content_rebuilds_and_a_bad_row_fails_the_build(
    failed: tuple[Path, Path],
) -> None:
    tree, data = failed
    done = _make(tree, "release", "JOBS=2")
    assert done.returncode != 0
    assert "1 of 13 rows rejected" in done.stderr
    assert not (tree / "dist" / f"ccc2017-sample-{VERSION}.zip").exists()
    out = _out(tree)
    assert len(_rows(out / "manifest.csv")) == len(_rows(data))
    rejected = _rows(out / "rejected.csv")
    assert len(rejected) == 1 and "length" in rejected[0]["reason"]
    page = html.fromstring((out / "report" / "index.html").read_bytes())
    assert page.xpath("//tr[@class='rejected-row']/td[5]")[0].text_content().startswith("length")
    again = _make(tree, "release")
    assert again.returncode != 0  # still failing, and nothing but the check is redone
    assert "-m csv2sr convert" not in again.stdout


def test_all_rows_bad_fails_the_build(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "bad")
    done = _make(tree, "release", "CSV=fixtures/ccc2017-bad.csv")
    assert done.returncode != 0
    assert not (tree / "dist").exists() or not any((tree / "dist").iterdir())
    out = _out(tree, "ccc2017-bad")
    manifest = _rows(out / "manifest.csv")
    assert len(manifest) == len(_rows(tree / "fixtures/ccc2017-bad.csv"))
    rejected = [m for m in manifest if m["status"] == "rejected"]
    assert len(rejected) == len(_rows(out / "rejected.csv")) > 0
    assert f"{len(rejected)} of {len(manifest)} rows rejected" in done.stderr


def test_no_row_converted_stops_at_convert(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "none")
    lines = (tree / "fixtures/ccc2017-bad.csv").read_text().splitlines()
    (tree / "none.csv").write_text("\n".join([lines[0], *[x for x in lines if ",abc," in x]]))
    done = _make(tree, "release", "CSV=none.csv")
    assert done.returncode != 0
    assert "no row of none.csv was converted" in done.stderr
    assert len(_rows(_out(tree, "none") / "rejected.csv")) == 1
    assert "-m csv2sr validate" not in done.stdout


def test_unusable_csv_stops_at_convert(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "empty")
    done = _make(tree, "release", "CSV=fixtures/not-a-csv.csv")
    assert done.returncode != 0
    assert "not-a-csv.csv" in done.stderr  # convert names the file
    assert "-m csv2sr validate" not in done.stdout
    assert not (tree / "dist").exists()


# ------------------------------------------------------------------ in a browser


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *args],
        capture_output=True, timeout=180, check=False,
    )


@pytest.fixture(scope="module")
def browser() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def _dom(index: Path, profile: Path) -> html.HtmlElement:
    done = _chromium(profile, "--dump-dom", index.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    return html.fromstring(done.stdout)


def test_browser_shows_counts_histograms_and_tools(
    released: Path, browser: Path, tmp_path: Path
) -> None:
    index = _out(released) / "report" / "index.html"
    page = _dom(index, tmp_path / "profile")
    rows = _rows(released / SAMPLE)
    assert page.get_element_by_id("count-rows").text_content() == str(len(rows))
    assert page.get_element_by_id("count-rejected").text_content() == "0"
    assert "Ready to publish" in page.get_element_by_id("verdict").text_content()
    shown = {tr.get("data-value"): tr for tr in page.xpath(
        "//table[@data-column='anatomy']//tr[@class='tally-value']")}
    for anatomy, collection in (("Renal", "TCGA-KIRC"), ("Ovarian", "TCGA-OV"),
                                ("Lung", "TCGA-LUAD"), ("Liver", "TCGA-LIHC")):
        cells = [td.text_content() for td in shown[anatomy].xpath("td")]
        assert cells[1] == collection
        assert cells[3] == str(sum(r["anatomy"] == anatomy for r in rows))
        bars = shown[anatomy].xpath(".//svg//*[local-name()='rect' and @class='bar']")
        assert bars, f"no histogram bars for {anatomy}"
        assert all(float(b.get("height")) > 0 for b in bars)
    tools = {tr.xpath("td")[0].text_content(): tr.xpath("td")[1].text_content()
             for tr in page.xpath("//tr[@class='tool']")}
    assert tools["csv2sr"] == VERSION
    for tool in ("pydicom", "highdicom", "lxml", "libxslt", "dicom3tools dcsrdump",
                 "dicom3tools dciodvfy", "GNU make"):
        assert tools.get(tool), tool
    statuses = [td.text_content() for td in page.xpath(
        "//table[@data-column='radiologist_status']//tr[@class='tally-value']/td[1]")]
    assert statuses == ["radiologist", "not_radiologist"]  # the enumeration's order


def test_browser_links_resolve_to_files(released: Path, browser: Path, tmp_path: Path) -> None:
    report = _out(released) / "report"
    page = _dom(report / "index.html", tmp_path / "profile")
    links = page.xpath("//a/@href")
    assert len(page.xpath("//a[@class='sr-link']")) == len(_rows(released / SAMPLE))
    assert page.xpath("//a[@class='report-link']") and page.xpath("//a[@class='dump-link']")
    for link in links:
        assert "://" not in link, f"{link}: the report must not need the network"
        assert (report / link).resolve().is_file(), link
    sr_page = _dom(report / page.xpath("//a[@class='sr-link']/@href")[0], tmp_path / "p2")
    text = sr_page.text_content()
    assert "Imaging Measurement Report" in text and "Length" in text
    assert len(sr_page.xpath("//li[@class='item']")) >= 15
    assert not page.xpath("//script") and not sr_page.xpath("//script")


def test_browser_shows_the_rejected_row(failed: tuple[Path, Path], browser: Path,
                                        tmp_path: Path) -> None:
    tree, _ = failed
    index = _out(tree) / "report" / "index.html"
    if "rejected-row" not in index.read_text():  # this test runs alone
        assert _make(tree, "release", "JOBS=2").returncode != 0
    page = _dom(index, tmp_path / "profile")
    assert page.get_element_by_id("count-rejected").text_content() == "1"
    assert "Not ready to publish" in page.get_element_by_id("verdict").text_content()
    row = page.xpath("//tr[@class='rejected-row']")[0]
    assert "not a number" in row.text_content()


def test_screenshot_renders(released: Path, browser: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = _chromium(tmp_path / "profile", "--window-size=1280,2400",
                     f"--screenshot={shot}", (_out(released) / "report/index.html").as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank page is a few kB


# ------------------------------------------------------------------ the real CSV


@pytest.mark.slow
def test_real_csv_release_has_no_validation_error(tmp_path: Path) -> None:
    if not REAL_CSV.is_file():
        pytest.skip(f"the real CSV is not at {REAL_CSV}")
    tree = _tree(tmp_path / "real")
    done = _make(tree, "release", f"CSV={REAL_CSV}", f"OUT={tmp_path / 'out'}",
                 f"DIST={tmp_path / 'dist'}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = _rows(tmp_path / "out" / "manifest.csv")
    assert len(manifest) == 2345 and {m["status"] for m in manifest} == {"converted"}
    zipped = tmp_path / "dist" / f"CrowdsCureCancer2017Annotations-{VERSION}.zip"
    with zipfile.ZipFile(zipped) as zf:
        assert sum(n.endswith(".dcm") for n in zf.namelist()) == 2345
    page = html.fromstring((tmp_path / "out" / "report" / "index.html").read_bytes())
    assert "Ready to publish" in page.get_element_by_id("verdict").text_content()


def test_rows_removed_from_the_csv_leave_the_release(released: Path, tmp_path: Path) -> None:
    """make release after deleting rows: the removed rows' SRs are gone from sr/,
    export.csv, the reports and the zip, and the release check proves it."""
    tree = tmp_path / "r"
    shutil.copytree(released, tree)
    data = tree / SAMPLE
    lines = data.read_text().splitlines(keepends=True)
    kept, removed = lines[:1] + lines[1:-4], lines[-4:]
    data.write_text("".join(kept))
    done = _make(tree, "release", "JOBS=2")
    assert done.returncode == 0, done.stdout + done.stderr
    out = _out(tree)
    manifest = _rows(out / "manifest.csv")
    gone = {row.split(",")[12] for row in removed}  # their _id
    assert len(manifest) == len(kept) - 1
    assert {r["_id"] for r in _rows(out / "export.csv")} == {m["_id"] for m in manifest}
    assert not gone & {r["_id"] for r in _rows(out / "export.csv")}
    listed = {m["path"] for m in manifest}
    assert {p.relative_to(out).as_posix() for p in (out / "sr").rglob("*.dcm")} == listed
    with zipfile.ZipFile(tree / "dist" / f"ccc2017-sample-{VERSION}.zip") as zf:
        root = f"ccc2017-sample-{VERSION}/"
        packed = {n[len(root):] for n in zf.namelist() if n.endswith(".dcm")}
        reports = [n for n in zf.namelist() if n.startswith(root + "reports/")]
    assert packed == listed and len(reports) == len(listed)


def test_a_stale_sr_planted_after_convert_blocks_the_release(
    released: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "s"
    shutil.copytree(released, tree)
    out = _out(tree)
    first = sorted((out / "sr").rglob("*.dcm"))[0]
    shutil.copy2(first, first.with_name("order-9999.dcm"))  # csv2sr's, but not listed
    (out / "stages" / "check.done").unlink()
    done = _make(tree, "release")
    assert done.returncode != 0
    assert "not converted rows of the manifest" in done.stderr and "order-9999" in done.stderr
    assert not (tree / "dist" / f"ccc2017-sample-{VERSION}.zip").exists()
