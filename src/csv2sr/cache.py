"""What a stage made of each file, kept between runs: a rerun redoes only what changed.

A :class:`ResultCache` is one JSON file (in a release: ``OUT/cache/<stage>.json``) that maps
a file, by its path *and* the SHA-256 of its bytes, to what a stage made of it (the
validator's findings, the SHA-256 of a dump or of a page, the rows of a table).  It holds
for one *key*: the code that made the results (:func:`code_digest`, every source file of
csv2sr), the versions of the libraries and external tools, and the options of the run.
A file is looked up by the digest of the bytes read now, so a result is never used for a
file it does not match; a cache of another key or format, or one that cannot be read, is
ignored (and replaced), never an error.  Only the entries of this run's files are written
back, so the cache does not grow with files that are gone.

A result that depends on the moment rather than on the file (a tool that timed out or could
not be started) is not stored: the caller leaves it out.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csv2sr.atomic import write_atomic

__all__ = [
    "FORMAT",
    "LIBRARIES",
    "ResultCache",
    "code_digest",
    "file_digest",
    "library_versions",
    "read_regular",
    "repr_digest",
]

log = logging.getLogger(__name__)

FORMAT = 1
"""The layout of the JSON file; another one is ignored."""

_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def code_digest() -> str:
    """SHA-256 over every source file of the installed csv2sr package (``*.py``, and the
    stylesheets where a wheel put them inside it), by relative path: a changed line
    anywhere invalidates every cache.  A stage whose results depend on other files (the
    report's stylesheets, a profile) puts their digests in its key."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*")):
        if path.suffix not in (".py", ".xsl") or "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(_PACKAGE).as_posix().encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


LIBRARIES = ("pydicom", "numpy", "lxml")
"""The libraries whose reading or writing a cached result depends on: pydicom parses the
files, numpy formats exported coordinates, lxml (libxml2, libxslt) renders the pages."""


@functools.cache
def library_versions() -> dict[str, str]:
    """The installed version of each of :data:`LIBRARIES` (part of every cache's key)."""
    import importlib.metadata  # noqa: PLC0415

    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = ""
    return found


def file_digest(data: bytes) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    return hashlib.sha256(data).hexdigest()


def repr_digest(value: object) -> str:
    """The SHA-256 of ``repr(value)``, as hex: the name of a value made of frozen
    dataclasses and tuples of plain values (str, int, float, datetime), whose ``repr`` is
    the same text in every run for the same values."""
    return file_digest(repr(value).encode("utf-8", "surrogateescape"))


def read_regular(path: str | os.PathLike[str]) -> bytes | None:
    """The bytes of ``path`` when it is a regular file that can be read, else None (a FIFO
    is never opened: it could block)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            return handle.read()
    except OSError:
        return None


class ResultCache:
    """Results by (path, SHA-256 of the bytes), valid for one key; see the module docstring.

    ``path`` None is a cache that holds nothing and writes nothing (the stage run without
    ``--cache``).
    """

    def __init__(self, path: Path | None, key: Mapping[str, object]) -> None:
        self.path = path
        self.key = {"format": FORMAT, "code": code_digest() if path else "",
                    "libraries": library_versions() if path else {}, **key}
        self._old: dict[str, Any] = {}
        self._new: dict[str, Any] = {}
        self.hits = 0
        if path is not None:
            self._old = self._load(path)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def _load(self, path: Path) -> dict[str, Any]:
        data = read_regular(path)
        if data is None:
            return {}
        try:
            document = json.loads(data)
        except ValueError:
            log.info("%s: not a cache file csv2sr can read: ignored", path)
            return {}
        if not isinstance(document, dict) or document.get("key") != _jsonable(self.key):
            log.info("%s: made by other code, tools or options: ignored", path)
            return {}
        entries = document.get("entries")
        return entries if isinstance(entries, dict) else {}

    @staticmethod
    def entry(path: str, digest: str) -> str:
        """The name of a file's entry: its SHA-256, then its path as given."""
        return f"{digest} {path}"

    def get(self, path: str, digest: str) -> Any | None:
        """What the last run made of ``path`` when it held the bytes of ``digest``; kept
        for the next run."""
        name = self.entry(path, digest)
        if name not in self._old:
            return None
        self.hits += 1
        self._new[name] = self._old[name]
        return self._old[name]

    def entries_of(self, path: str) -> dict[str, Any]:
        """Every entry the last run kept under ``path``, by digest (not kept for the next
        run unless :meth:`put` again)."""
        suffix = " " + path
        return {name[:-len(suffix)]: value for name, value in self._old.items()
                if name.endswith(suffix)}

    def put(self, path: str, digest: str, value: Any) -> None:
        """Keep what this run made of ``path`` (holding the bytes of ``digest``)."""
        if self.path is not None:
            self._new[self.entry(path, digest)] = value

    def save(self) -> None:
        """Write the entries of this run (and only those), atomically; the file's folder is
        created when missing.  Raises :class:`csv2sr.atomic.OutputError` when it cannot."""
        if self.path is None:
            return
        document = {"key": _jsonable(self.key), "entries": dict(sorted(self._new.items()))}
        write_atomic(self.path, json.dumps(document, separators=(",", ":")) + "\n",
                     durable=False, keep_same=True)


def _jsonable(value: Mapping[str, object]) -> Any:
    """The key as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))
