"""Run a conversion: rows in, one SR file per good row, a manifest and the rejected rows out.

Rows stream from :func:`csv2sr.conversion.checks.read_rows` in input order, are encoded in
worker processes in small chunks (memory stays flat), and every file is written by
:mod:`csv2sr.atomic`: a temporary file in the target folder, then ``os.replace``, never
through a symbolic link.  An interrupted run leaves no partial ``.dcm``.  The manifest has
one line per input row, converted or rejected.  What a run owns in OUTDIR (and so may
replace or remove), the stale-file removal and the OUTDIR lock are
:mod:`csv2sr.conversion.outputs`; after a successful run ``sr/`` holds exactly the
converted rows of the manifest.

Output layout::

    OUTDIR/manifest.csv                     one line per input row
    OUTDIR/rejected.csv                     the rejected rows, their cells, line and reason
    OUTDIR/sr/<PatientID>/order-<order>.dcm one SR per converted row
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import functools
import itertools
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydicom import Dataset

from csv2sr.atomic import OutputError, atomic_text, output_error, remove_in_flight, write_atomic
from csv2sr.cache import file_digest
from csv2sr.conversion.checks import InputFileError, RowError, RowProblem, read_rows
from csv2sr.conversion.document import as_document, dataset_bytes, failure_problem
from csv2sr.conversion.fastpath import FastEncoder
from csv2sr.conversion.group import documents
from csv2sr.conversion.memo import ConvertCache, Done, Proven, done_of
from csv2sr.conversion.outputs import (
    OutdirLock,
    Owned,
    check_kinds,
    refuse_foreign,
    remove_leftovers,
    remove_stale,
    scan_sr,
)
from csv2sr.conversion.server import INLINE_ROWS, PRELOAD, ensure_fork_server
from csv2sr.dicom.codes import CodeMode
from csv2sr.errors import leave_interrupts
from csv2sr.images.checks import check_row_against_image
from csv2sr.images.index import ImageIndex, unpacked_headers
from csv2sr.images.resolve import resolve_record
from csv2sr.images.volume import SeriesVolume, resolve_points, series_volumes
from csv2sr.mapping.load import ProfileError, load_profile
from csv2sr.mapping.record import Document, ImageRef, Record
from csv2sr.mapping.spec import Spec, template_fields
from csv2sr.pools import started

__all__ = [
    "ConversionResult",
    "InputFileError",
    "OutputError",
    "convert",
    "manifest_columns",
]

log = logging.getLogger(__name__)

CHUNK = 32
"""Documents per task sent to a worker: large enough to amortise IPC, small enough to stream."""
ENRICHED_CACHE = 4096
"""At most this many enriched image headers are kept per worker (:meth:`_Worker._enriched`)."""


def manifest_columns(spec: Spec) -> tuple[str, ...]:
    """``manifest.csv``'s header: the line, the profile's unique columns (which name a
    row), then where its SR went and with which UIDs."""
    return ("line", *spec.unique_columns, "path", "sop_instance_uid", "series_instance_uid",
            "tracking_uid", "status", "message")


@dataclass
class ConversionResult:
    """What a conversion did; ``errors`` holds every rejected row with its reasons."""

    csv_path: Path
    outdir: Path
    rows_read: int = 0
    converted: int = 0
    rejected: int = 0
    documents: int = 0
    """SR files written (one per row unless the profile groups rows)."""
    seconds: float = 0.0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """SRs written per second."""
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when every row was converted."""
        return self.rejected == 0


class _ByChunk:
    """Stands for the image index in a pool worker's arguments: the headers of each
    chunk's images come with the chunk (:func:`_shipped`).  The whole index pickled for
    every worker was paid before any worker started, and grew with the folder, not with
    the table (17,040 headers for a LUNA16-shaped table that lists 4,810 of them)."""


class _Worker:
    """Per-process state: the profile, code mode, ``ohif``, fast encoder and optional
    image headers (the index, or in a pool worker those its chunks brought); ``digests``:
    each SR's SHA-256 goes back with it, and the templates the worker proves
    (:class:`csv2sr.conversion.memo.Proven`), for the convert cache
    (:mod:`csv2sr.conversion.memo`), whose stored templates are ``templates``."""

    def __init__(
        self, csv_path: Path, outdir: Path, spec: Spec, mode: CodeMode,
        images: ImageIndex | _ByChunk | None, fast: bool, ohif: bool = False,
        digests: bool = False, templates: Mapping[str, bytes] | None = None,
    ) -> None:
        self.csv_path = csv_path
        self.outdir = outdir
        self.spec = spec
        self.mode = mode
        self.ohif = ohif
        self.digests = digests
        self.received = unpacked_headers()
        """The headers the chunks brought (a pool worker's)."""
        self.images: ImageIndex | Mapping[str, Dataset] | None = (
            self.received if isinstance(images, _ByChunk) else images)
        self.fast = FastEncoder(spec, mode, ohif, stored=templates, keep=digests) if fast else None
        self.name_column = (template_fields(spec.document.file_name) or ("(row)",))[0]
        self.enriched: dict[tuple[ImageRef, str, str, str, str], Dataset] = {}

    def handle(self, item: Document | RowError | Done) -> list[Done | RowError]:
        if isinstance(item, RowError | Done):  # rejected, or already written (memo)
            return [item]
        try:
            if self.fast is not None:
                data = self.fast.encode_bytes(item, self._headers(item))
            else:
                from csv2sr.conversion.build import encode  # noqa: PLC0415  (highdicom)

                data = dataset_bytes(encode(item, self.spec, self.mode,
                                            headers=self._headers(item), ohif=self.ohif))
        except Exception as exc:  # a row highdicom refuses is a rejected row, not a crash
            # one line naming the column; the whole traceback only with -vv
            log.debug("line %d: could not be encoded", item.first.line, exc_info=True)
            return [self._rejected(r, failure_problem(r, exc, self.spec)) for r in item.records]
        refused = self.write(item, data)
        if refused is not None:
            return refused
        digest = file_digest(data) if self.digests else ""
        return [done_of(item, self.spec, self.mode, self.ohif, digest)]

    def warm(self, record: Record) -> None:
        """Build the SR of ``record`` alone and keep nothing but what the fast path
        learnt (the templates of its shape and of its groups, proved on it): sent while
        the parent still checks a grouped table, so that the first documents find them."""
        if self.fast is None:
            return
        document = as_document(record, self.spec)
        twice = dataclasses.replace(document, records=(record, record))
        # what the warm-up cannot make, the documents themselves will report (its own
        # warnings would name a document that is never written)
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        failure: Exception | None = None
        try:
            for warm in (document, twice):  # twice: the pieces of many-group documents
                self.fast.encode_bytes(warm, self._headers(warm))
            self.fast.prove_pending()  # its template now, not on the first document
        except Exception as exc:
            failure = exc
        finally:
            logging.disable(previous)
        if failure is not None:
            log.debug("line %d: no warm-up (%s)", record.line, failure)

    def _headers(self, document: Document) -> dict[str, Dataset] | None:
        if self.images is None:
            return None
        headers = {}
        for record in document.records:
            for image in record.images:
                found = self.images.get(image.sop_instance_uid)
                if found is not None:
                    headers[image.sop_instance_uid] = self._enriched(found, record, image)
        return headers

    def _enriched(self, header: Dataset, record: Record, image: ImageRef) -> Dataset:
        """:func:`enriched_header`, once per image and the row values it may stand in
        with (rows on one image share it; the encoders only read it)."""
        key = (image, record.study_date, record.study_time, record.patient_id,
               record.study_uid)
        found = self.enriched.get(key)
        if found is None:
            from csv2sr.images.enrich import enriched_header  # noqa: PLC0415  (highdicom)

            if len(self.enriched) >= ENRICHED_CACHE:
                self.enriched.clear()
            found = self.enriched[key] = enriched_header(header, record, image)
        return found

    def _rejected(self, record: Record, problem: RowProblem) -> RowError:
        return RowError(self.csv_path, record.line, (problem,), record.cells)

    def write(self, document: Document, data: bytes) -> list[Done | RowError] | None:
        """Write one SR inside OUTDIR (never through a link), unless it already holds
        these bytes (a rerun rewrites only the documents that changed, and the others keep
        their time); a name the file system cannot hold rejects its rows, any other
        failure of the system stops the run."""
        try:
            write_atomic(self.outdir / document.relpath, data, root=self.outdir, durable=False,
                         keep_same=True)
        except OutputError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            return [self._rejected(r, RowProblem(
                self.name_column, f"the file name {document.relpath} is too long for the "
                "file system", r.cells.get(self.name_column, ""))) for r in document.records]
        return None


_WORKER: _Worker | None = None


def _init_worker(args: tuple[Any, ...]) -> None:
    global _WORKER  # noqa: PLW0603  (one worker object per process)
    _WORKER = _Worker(*args)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    remove_in_flight()
    os._exit(128 + signum)


def _init_pool_worker(args: tuple[Any, ...]) -> None:
    """A worker process: Ctrl-C is the parent's to handle (it ends the pool); SIGTERM (the
    pool ending it, or a signal to the whole process group) removes the file being
    written and ends the process at once, without a traceback."""
    leave_interrupts()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _init_worker(args)


_Item = Document | RowError | Done
"""What goes to a worker: a document to build, a rejected row, or a document whose SR is
already written (:class:`csv2sr.conversion.memo.ConvertCache`), passed through in order."""

_Chunk = tuple[list[_Item], dict[str, Any] | None]
"""Documents, and the packed headers of their images (``ImageIndex.packed_headers``) when
the worker gets its headers by chunk (:class:`_ByChunk`)."""


def _run_chunk(payload: _Chunk) -> list[Done | RowError | Proven]:
    """The chunk's results, then the templates proved while building it (with a cache)."""
    assert _WORKER is not None, "worker not initialised"
    chunk, headers = payload
    if headers:
        _WORKER.received.add(headers)
    done: list[Done | RowError | Proven] = [
        result for item in chunk for result in _WORKER.handle(item)]
    return done + _proven(_WORKER)


def _warm(payload: tuple[Record, dict[str, Any] | None]) -> None:
    """A pool task: :meth:`_Worker.warm` (the record's packed headers, when it has images)."""
    assert _WORKER is not None, "worker not initialised"
    record, headers = payload
    if headers:
        _WORKER.received.add(headers)
    _WORKER.warm(record)


def _proven(worker: _Worker) -> list[Proven]:
    """The templates ``worker`` proved since it was last asked (none without a cache)."""
    if worker.fast is None or not worker.fast.proven:
        return []
    proven = Proven(dict(worker.fast.proven))
    worker.fast.proven.clear()
    return [proven]


def _shipped(chunk: list[_Item], images: ImageIndex | None) -> _Chunk:
    """A chunk with the packed headers of its documents' images (none without images)."""
    if images is None:
        return chunk, None
    uids = (image.sop_instance_uid for item in chunk if isinstance(item, Document)
            for record in item.records for image in record.images)
    return chunk, images.packed_headers(uids)


def _chunks(items: Iterable[_Item]) -> Iterator[list[_Item]]:
    chunk: list[_Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@contextlib.contextmanager
def _pool(context: Any, jobs: int, worker_args: tuple[Any, ...]) -> Iterator[Any]:
    """The worker pool, ended on leaving (:func:`csv2sr.pools.started`: a SIGINT or
    SIGTERM that arrives while the pool starts its workers is held until the pool is whole
    and will be ended on the way out, then delivered).  The fork server (the parent of
    every worker) is started with SIGINT ignored (:func:`ensure_fork_server`), so it and
    every worker it forks ignore Ctrl-C from birth."""
    def make() -> Any:
        if context.get_start_method() == "forkserver":
            ensure_fork_server()
        return context.Pool(jobs, initializer=_init_pool_worker, initargs=(worker_args,))

    with started(make) as pool:
        yield pool


@dataclass
class Warmup:
    """The first checked row of a grouped table, sent to every worker while the parent
    checks the others (:meth:`_Worker.warm`): :meth:`tap` watches the checked rows,
    :func:`_results` sets :attr:`send` while it waits for the first document."""

    send: Callable[[Record], None] | None = None
    sent: bool = False

    def tap(self, items: Iterable[Record | RowError]) -> Iterator[Record | RowError]:
        for item in items:
            if not self.sent and isinstance(item, Record):  # the first row only
                self.sent = True
                if self.send is not None:
                    self.send(item)
            yield item


def _send_warmup(pool: Any, jobs: int, images: ImageIndex | None, record: Record) -> None:
    headers = None if images is None else images.packed_headers(
        image.sop_instance_uid for image in record.images)
    for _ in range(jobs):  # idle workers each take one
        pool.apply_async(_warm, ((record, headers),))


def _results(
    items: Iterable[_Item], jobs: int, worker_args: tuple[Any, ...],
    warmup: Warmup | None = None,
) -> Iterator[Done | RowError | Proven]:
    if jobs <= 1:
        _init_worker(worker_args)
        assert _WORKER is not None
        for chunk in _chunks(items):
            yield from _run_chunk((chunk, None))
        if _WORKER.fast is not None and _WORKER.digests:
            # with a cache, a shape seen once leaves its template for the next run too
            _WORKER.fast.prove_pending()
            yield from _proven(_WORKER)
        return
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    if context.get_start_method() == "forkserver":
        # the workers' imports once, in the server, not once per worker (conversion.warm);
        # the command line may have started the server already (conversion.server)
        context.set_forkserver_preload(PRELOAD)
    images = next((a for a in worker_args if isinstance(a, ImageIndex)), None)
    shipped = tuple(_ByChunk() if isinstance(a, ImageIndex) else a for a in worker_args)
    with _pool(context, jobs, shipped) as pool:
        chunks: Iterator[_Chunk] = (_shipped(chunk, images) for chunk in _chunks(items))
        if warmup is not None:
            # a grouped table gives its first document once every row is checked: the
            # checks run here (not in the pool's feeding thread) and the first row is sent
            # to each worker meanwhile, to build its templates while they would wait
            warmup.send = functools.partial(_send_warmup, pool, jobs, images)
            first = next(chunks, None)
            warmup.send = None
            chunks = itertools.chain([] if first is None else [first], chunks)
        for results in pool.imap(_run_chunk, chunks):
            yield from results
    # Every result is in when the loop ends: the pool is closed and its workers exit by
    # themselves (csv2sr.pools.ended); an error or Ctrl-C terminates them instead
    # (SIGTERM: each removes the file it is writing and ends at once).


def _manifest_lines(item: Done | RowError, spec: Spec) -> Iterator[tuple[int, list[str]]]:
    if isinstance(item, RowError):
        cells = [item.cells.get(c, "") for c in spec.unique_columns]
        yield item.line, [str(item.line), *cells, "", "", "", "", "rejected", item.reason]
        return
    for line, keys, tracking in item.rows:
        yield line, [str(line), *keys, item.path, item.sop_instance_uid,
                     item.series_instance_uid, tracking, "converted", ""]


def _checked(
    items: Iterable[Record | RowError], images: ImageIndex | None, path: Path, spec: Spec
) -> Iterator[Record | RowError]:
    """Each row's image resolved through the index when the profile says how
    (:func:`csv2sr.images.resolve.resolve_record`), then checked against its header, when
    the source images are known; a point in patient coordinates is first placed in its
    series' volume (:mod:`csv2sr.images.volume`)."""
    volumes: tuple[dict[str, SeriesVolume], dict[str, str]] | None = None
    series_column = (spec.identity.series_uid.columns or ("(row)",))[0] \
        if spec.identity.series_uid is not None else "(row)"
    for item in items:
        if images is not None and isinstance(item, Record) and item.is_3d:
            if volumes is None:
                volumes = series_volumes(images)
            placed = resolve_points(item, *volumes, series_column)
            if not isinstance(placed, Record):
                yield RowError(path, item.line, tuple(placed), item.cells)
                continue
            yield from _against_image(placed, images, path, spec)
            continue
        if images is not None and isinstance(item, Record):
            resolved = resolve_record(item, images, spec)
            if not isinstance(resolved, Record):
                yield RowError(path, item.line, tuple(resolved), item.cells)
                continue
            item = resolved  # noqa: PLW2901  (the row, now with its image)
            problems = check_row_against_image(item, images, path=path, spec=spec)[1]
            if problems:
                yield RowError(path, item.line, tuple(problems), item.cells)
                continue
        yield item


def _against_image(record: Record, images: ImageIndex, path: Path, spec: Spec
                   ) -> Iterator[Record | RowError]:
    problems = check_row_against_image(record, images, path=path, spec=spec)[1]
    if problems:
        yield RowError(path, record.line, tuple(problems), record.cells)
    else:
        yield record


def _paced(items: Iterable[_Item], workers: int) -> tuple[Iterable[_Item], int]:
    """The items, and the workers to build them with: one (this process) when fewer than
    :data:`INLINE_ROWS` documents are left to build once the cache's hits are known (a
    rerun after one row changed starts no pool), else ``workers``."""
    stream = iter(items)
    head: list[_Item] = []
    building = 0
    for item in stream:
        head.append(item)
        building += isinstance(item, Document)
        if building >= INLINE_ROWS:
            return itertools.chain(head, stream), workers
    return head, 1


def _convert_rows(
    items: Iterable[Document | RowError], result: ConversionResult, owned: Owned,
    worker_args: tuple[Any, ...], workers: int, progress: Callable[[int], None] | None,
    memo: ConvertCache, warmup: Warmup | None = None,
) -> None:
    """Convert every document (a hit of ``memo`` is not built again), then remove the stale
    SRs.  ``rejected.csv`` and ``manifest.csv`` are committed after that (the manifest
    last), so that a run that fails or is interrupted leaves neither, and a manifest always
    tells what ``sr/`` holds.  One manifest line per input row, in input order."""
    out: Path = worker_args[1]
    spec: Spec = worker_args[2]
    stream: Iterable[_Item] = items
    if memo.enabled:
        stream, workers = _paced(memo.marked(items, worker_args[4]), workers)
    written: set[str] = set()
    grouped = spec.document.per != "row"
    held: list[tuple[int, list[str]]] = []
    with (
        atomic_text(out / "manifest.csv", root=out) as manifest_file,
        atomic_text(out / "rejected.csv", root=out) as rejected_file,
    ):
        manifest = csv.writer(manifest_file, lineterminator="\n")
        rejected = csv.writer(rejected_file, lineterminator="\n")
        manifest.writerow(manifest_columns(spec))
        rejected.writerow((*spec.columns, "line", "reason"))
        for done in _results(stream, workers, worker_args, warmup):
            if isinstance(done, Proven):
                memo.keep_templates(done)
                continue
            memo.keep(done)
            lines = list(_manifest_lines(done, spec))
            result.rows_read += len(lines)
            if grouped:
                held.extend(lines)
            else:
                manifest.writerows(line for _, line in lines)
            if isinstance(done, RowError):
                result.rejected += 1
                result.errors.append(done)
                rejected.writerow(
                    [done.cells.get(c, "") for c in spec.columns] + [str(done.line), done.reason]
                )
                for message in done.messages():
                    log.info("rejected: %s", message)
            else:
                result.converted += len(done.rows)
                result.documents += 1
                written.add(done.path)
            if progress is not None:
                progress(result.rows_read)
        manifest.writerows(line for _, line in sorted(held, key=lambda pair: pair[0]))
        remove_stale(out, owned, written)
    memo.save()


def convert(
    csv_path: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    codes: str | CodeMode = CodeMode.SCT,
    profile: str | os.PathLike[str] | Spec = "ccc2017",
    images: ImageIndex | None = None,
    progress: Callable[[int], None] | None = None,
    fast: bool = True,
    ohif: bool = False,
    cache: str | os.PathLike[str] | None = None,
) -> ConversionResult:
    """Convert every row of ``csv_path`` into one SR under ``outdir``.

    ``jobs`` worker processes (default: the CPU count, or none for a table of fewer than
    :data:`INLINE_ROWS` rows, converted in this process); ``codes`` ``"sct"`` or ``"srt"``;
    ``profile`` a built-in profile's name, a profile file, or a loaded
    :class:`~csv2sr.mapping.spec.Spec` (:func:`csv2sr.mapping.load.load_profile` raises
    :class:`~csv2sr.mapping.load.ProfileError` for a broken one);
    ``images`` an :class:`csv2sr.images.index.ImageIndex` of the source images, which adds the
    image cross-checks and enriches the SRs; ``progress`` is called with the number of rows
    done after each row; ``fast=False`` builds every SR with highdicom (the reference
    builder) rather than the proven-equal template path of :mod:`csv2sr.conversion.fastpath`;
    ``ohif=True`` writes the Tracking Identifiers OHIF loads as editable measurements,
    ``Cornerstone3DTools@^0.1.0:<Tool>:<identifier>`` for every group that has a
    Cornerstone3D tool (:func:`csv2sr.conversion.build.with_ohif`, docs/ohif.md), with their
    own SOP Instance and Series UIDs; ``cache`` a file that keeps what each document was
    written as, so that a rerun builds only the documents that changed or whose SR is no
    longer as it was written (:mod:`csv2sr.conversion.memo`; the bytes are those of a
    run without it).

    Raises :class:`InputFileError` when the file as a whole is unusable, and
    :class:`csv2sr.atomic.OutputError` when OUTDIR cannot be written (disk full, no
    permission, another run holding it, something in ``sr/`` that csv2sr did not write).
    """
    started = time.perf_counter()
    source = Path(csv_path)
    out = Path(outdir)
    spec = profile if isinstance(profile, Spec) else load_profile(os.fspath(profile))
    if spec.identity.resolved and images is None:
        raise ProfileError(spec.path or spec.name, "identity.needs",
                           "the rows' images are resolved through the source images: give "
                           "them (--images DIR or --images-url URL)")
    ohif = ohif or spec.document.ohif  # the profile's document.ohif is --ohif too
    mode = CodeMode(codes)
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    result = ConversionResult(csv_path=source, outdir=out)
    rows = read_rows(source, spec)
    first = next(rows)  # raises InputFileError before anything is written
    head = [first, *itertools.islice(rows, INLINE_ROWS - 1)]
    if jobs is None and len(head) < INLINE_ROWS:
        workers = 1  # a small table: no worker pool (INLINE_ROWS)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(out, "is not a folder", errno.ENOTDIR) from None
    except OSError as exc:
        raise output_error(out, exc) from None
    with OutdirLock(out):
        check_kinds(out)
        owned = scan_sr(out)
        refuse_foreign(out, owned)
        remove_leftovers(out, owned)
        checked = _checked(itertools.chain(head, rows), images, source, spec)
        # only a grouped table waits for every row before its first document
        warmup = Warmup() if spec.document.per != "row" else None
        items = checked if warmup is None else warmup.tap(checked)
        memo = ConvertCache(None if cache is None else Path(cache), out, spec, mode,
                            ohif=ohif, fast=fast, owned=owned.files)
        try:
            _convert_rows(
                documents(items, spec, source), result, owned,
                (source, out, spec, mode, images, fast, ohif, memo.enabled,
                 memo.templates() if fast else None), workers,
                progress, memo, warmup,
            )
        finally:
            memo.close()
    result.seconds = time.perf_counter() - started
    log.info(
        "%s: %d rows read, %d converted into %d SRs, %d rejected in %.1f s",
        source, result.rows_read, result.converted, result.documents, result.rejected,
        result.seconds,
    )
    return result

