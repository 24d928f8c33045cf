"""What a conversion wrote for each document, kept between runs (``convert --cache FILE``).

A rerun of ``make release`` after one row of the table changed rebuilt every SR to find
the one whose bytes changed.  With a cache, a document is looked up by a digest of all it
holds (:func:`document_digest`: every value of its records as the profile checked them,
where its SR goes, and the image headers it is enriched from) under a key of everything
else the bytes depend on (csv2sr's code, highdicom's and pydicom's versions, the profile,
the code mode, ``--ohif``, the builder).  It is a hit only when the SR the last run wrote
for it is still in ``OUTDIR/sr``, a file of csv2sr's own (:func:`csv2sr.conversion.outputs.
scan_sr`) whose bytes have the SHA-256 the cache recorded, read without following a link
(:class:`csv2sr.atomic.InsideReader`): the file a clean build would write is already there,
and it is neither rebuilt nor touched.  Anything else (no entry, another key, a changed or
missing file) is built as without a cache, so a cached run writes the bytes a clean run
writes.  The cache itself is a :class:`csv2sr.cache.ResultCache`.

It also keeps the templates the run proved (:class:`csv2sr.conversion.fastpath.FastEncoder`,
the sentinel bytes of each shape, with their SHA-256), valid for the same key: the next
run renders a document of a known shape at once, where it would otherwise build it with
highdicom first (0.4-0.5 s for the first SR of a process, most of it highdicom reading
its 22 MB of standard tables).  A template whose bytes no longer have their SHA-256 is
dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from csv2sr.atomic import InsideReader
from csv2sr.cache import ResultCache, file_digest, repr_digest
from csv2sr.conversion.checks import RowError
from csv2sr.conversion.document import document_uids
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.record import Document
from csv2sr.mapping.spec import Spec

__all__ = ["ConvertCache", "Done", "Proven", "document_digest"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Done:
    """A written SR and the rows it holds, as the manifest records them."""

    rows: tuple[tuple[int, tuple[str, ...], str], ...]
    """(line, unique cells, tracking UIDs) of each row."""
    path: str
    sop_instance_uid: str
    series_instance_uid: str
    sha256: str = ""
    """The SHA-256 of the SR's bytes (what :class:`ConvertCache` records)."""


@dataclass(frozen=True)
class Proven:
    """Templates a worker built and proved, by shape digest (sentinel bytes), for the
    cache (:meth:`ConvertCache.keep_templates`)."""

    templates: dict[str, bytes]


TEMPLATES = "(templates)"
"""The name the templates are kept under in the cache (no SR path is in parentheses)."""


def done_of(document: Document, spec: Spec, mode: CodeMode, ohif: bool, sha256: str) -> Done:
    """The :class:`Done` of ``document``, written with bytes of SHA-256 ``sha256``."""
    uids = document_uids(document, spec, mode, ohif)
    rows = tuple(
        (r.line, tuple(v for _, v in r.keys), " ".join(g.tracking_uid for g in r.groups))
        for r in document.records
    )
    return Done(rows, document.relpath, uids.sop_instance, uids.series, sha256)


def document_digest(document: Document, headers: Mapping[str, Any] | None = None) -> str:
    """SHA-256 over the ``repr`` of the document (frozen dataclasses and tuples of str,
    int, float and datetime: the same values give the same text; the row's cells as
    written are left out, the checked values are what the SR is built from) and of the
    packed headers of its images (``ImageIndex.packed_headers``), when it has them."""
    digest = hashlib.sha256(repr(document).encode("utf-8", "surrogateescape"))
    if headers:
        digest.update(b"\0")
        digest.update(repr(sorted(headers.items())).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def profile_digest(spec: Spec) -> str:
    """SHA-256 of the profile's ``repr`` without the paths it was loaded from (its own
    and its join files'): the same profile in another checkout or release folder gives the
    same SRs (a join file's rows are in the documents it fills)."""
    bare = replace(spec, path=None, joins=tuple(replace(j, path=Path()) for j in spec.joins))
    return repr_digest(bare)


class ConvertCache:
    """The documents of the last run whose SRs are still in OUTDIR as it wrote them; see the
    module docstring.  ``path`` None holds and writes nothing (no ``--cache``)."""

    def __init__(
        self, path: Path | None, outdir: Path, spec: Spec, mode: CodeMode, *, ohif: bool,
        fast: bool, owned: Iterable[str] = (),
    ) -> None:
        self.outdir = outdir
        self.spec = spec
        self.mode = mode
        self.ohif = ohif
        self.owned = frozenset(owned)
        """The SR files csv2sr wrote in OUTDIR (``sr/...``): only these can be hits."""
        self._results = ResultCache(path, {
            "stage": "convert",
            "profile": profile_digest(spec),
            "codes": mode.value,
            "ohif": ohif,
            "builder": "template" if fast else "highdicom",
            "highdicom": version("highdicom"),
        })
        self._reader = InsideReader(outdir)
        self._hits = 0
        self._waiting: dict[str, str] = {}
        """relpath -> document digest of each document sent to be built."""

    @property
    def enabled(self) -> bool:
        return self._results.enabled

    @property
    def hits(self) -> int:
        """Documents whose SR was already written (not built again)."""
        return self._hits

    def lookup(self, document: Document, headers: Mapping[str, Any] | None = None
               ) -> Done | None:
        """The document's :class:`Done` when its SR is in OUTDIR as the last run wrote it,
        else None (then :meth:`keep` records what this run writes)."""
        digest = document_digest(document, headers)
        found = self._results.get(document.relpath, digest)
        if (isinstance(found, str) and document.relpath in self.owned
                and self._file_digest(document.relpath) == found):
            self._hits += 1
            return done_of(document, self.spec, self.mode, self.ohif, found)
        self._waiting[document.relpath] = digest
        return None

    def templates(self) -> dict[str, bytes]:
        """The templates the last run kept (see the module docstring), by shape digest;
        each is kept again for the next run."""
        found: dict[str, bytes] = {}
        for digest, value in self._results.entries_of(TEMPLATES).items():
            try:
                data = base64.b64decode(value["base64"], validate=True)
                good = file_digest(data) == value["sha256"]
            except (KeyError, TypeError, ValueError, binascii.Error):
                good = False
            if good:
                found[digest] = data
                self._results.put(TEMPLATES, digest, value)
            else:
                log.info("convert cache: a template whose bytes are not as recorded is dropped")
        return found

    def keep_templates(self, proven: Proven) -> None:
        """Keep the templates a worker proved, for the next run."""
        for digest, data in proven.templates.items():
            self._results.put(TEMPLATES, digest, {
                "sha256": file_digest(data), "base64": base64.b64encode(data).decode("ascii")})

    def _file_digest(self, relpath: str) -> str | None:
        data = self._reader(relpath)
        return None if data is None else file_digest(data)

    def keep(self, done: Done | RowError) -> None:
        """Record an SR this run built (a rejected row records nothing)."""
        if isinstance(done, Done) and done.sha256:
            digest = self._waiting.pop(done.path, None)
            if digest is not None:
                self._results.put(done.path, digest, done.sha256)

    def close(self) -> None:
        """Close the folders of OUTDIR the lookups opened."""
        self._reader.close()

    def save(self) -> None:
        """Write the cache (only this run's documents); see ``ResultCache.save``."""
        if self.enabled:
            log.info("convert cache: %d of the SRs were already written", self.hits)
            self._results.save()

    def marked(self, items: Iterable[Document | RowError],
               headers: Any = None) -> Iterator[Document | RowError | Done]:
        """Each document, or its :class:`Done` when it is a hit; rejected rows as they come.
        ``headers`` (an ``ImageIndex``) gives each document's packed image headers."""
        for item in items:
            if isinstance(item, RowError):
                yield item
                continue
            packed = None if headers is None else headers.packed_headers(
                image.sop_instance_uid for image in item.images)
            found = self.lookup(item, packed)
            yield item if found is None else found
