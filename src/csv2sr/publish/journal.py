"""The publish journal: one JSON line per confirmation, appended atomically.

``OUT/publish/<destination>.jsonl`` holds, for each file the server confirmed, a line::

    {"code":"0000","event":"stored","path":"sr/P1/order-0001.dcm","reason":"",
     "run":"5f0c2a9e41d7","sha256":"…","sop_instance_uid":"2.25.…",
     "time":"2025-01-01T12:00:00.000Z","v":1}

``event`` is ``stored`` (the server's answer confirmed it: STOW-RS Referenced SOP Sequence
or C-STORE success/warning status, PS3.18 I.2, PS3.4 B.2.3), ``verified`` (found by QIDO-RS
or C-FIND) or ``missing`` (not found by ``--verify``: the confirmation is withdrawn and the
next run sends the file again).  The last line about a SOP Instance UID decides; a line
whose ``sha256`` differs from the file on disk confirms an older version of it.

A line is written only after the server confirmed, by one ``write(2)`` of whole lines on a
descriptor opened with ``O_APPEND``, and flushed to disk (``fsync``) at most a second later
and when the run ends.  The write can still stop part-way (a SIGKILL during a write of
several pages, a full disk, a power cut), so a line counts only when it ends in a newline
and parses: a torn last line is ignored and cut off before anything else is appended (its
files are sent again, which the server takes as the same instances); an unreadable line in
the middle is skipped with a warning.  The journal is locked (``flock``) for the whole run,
so two runs cannot write it at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from csv2sr.atomic import AppendLog
from csv2sr.publish.model import DestinationError

__all__ = [
    "VERSION", "Journal", "JournalState", "Record", "iter_records", "parse_journal",
    "read_journal", "utc_now",
]

log = logging.getLogger(__name__)

VERSION = 1
EVENTS = ("stored", "verified", "missing")
_FIELDS = ("code", "event", "path", "reason", "run", "sha256", "sop_instance_uid", "time")
SYNC_INTERVAL_S = 1.0


def utc_now() -> str:
    """ISO 8601 UTC time with milliseconds, ``2025-01-01T12:00:00.000Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Record:
    """One journal line."""

    event: str
    sop_instance_uid: str
    sha256: str
    path: str
    run: str
    time: str
    code: str = ""
    reason: str = ""

    def to_line(self) -> bytes:
        body = {name: getattr(self, name) for name in _FIELDS} | {"v": VERSION}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8") + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Record | None:
        """The record of one complete line (without its newline), or None if unreadable."""
        try:
            body = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(body, dict) or body.get("v") != VERSION:
            return None
        if not all(isinstance(body.get(name), str) for name in _FIELDS):
            return None
        if body["event"] not in EVENTS or not body["sop_instance_uid"]:
            return None
        return cls(**{name: body[name] for name in _FIELDS})


@dataclass
class JournalState:
    """What a journal says: the deciding record of each SOP Instance UID."""

    last: dict[str, Record]
    lines: int = 0
    unreadable: int = 0
    torn_bytes: int = 0
    complete_length: int = 0  # bytes up to the end of the last complete line

    def confirmed(self, sop_instance_uid: str, sha256: str) -> Record | None:
        """The record confirming this file (same UID and bytes), or None."""
        record = self.last.get(sop_instance_uid)
        if record is None or record.event == "missing" or record.sha256 != sha256:
            return None
        return record


def parse_journal(data: bytes) -> JournalState:
    """Read journal bytes: complete, readable lines only (see the module docstring)."""
    end = data.rfind(b"\n") + 1
    state = JournalState(last={}, torn_bytes=len(data) - end, complete_length=end)
    for line in data[:end].split(b"\n")[:-1]:
        if not line.strip():
            continue
        record = Record.from_line(line)
        if record is None:
            state.unreadable += 1
            continue
        state.lines += 1
        state.last[record.sop_instance_uid] = record
    return state


class Journal:
    """An open, locked journal: read once, then appended to.  Use as a context manager.

    The file is a :class:`csv2sr.atomic.AppendLog` (``O_APPEND``, one ``write(2)`` per
    answer, locked, a torn last line cut off when it is opened)."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self._log = AppendLog(path)
        self._last_sync = 0.0
        self._dirty = False
        self.state = JournalState(last={})

    def __enter__(self) -> Journal:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            data = self._log.open()  # a symlinked journal is refused
        except BlockingIOError:
            raise DestinationError(
                self.path, "another csv2sr publish is writing this journal"
            ) from None
        except OSError as exc:
            raise DestinationError(self.path, f"cannot open the journal: {exc.strerror}") from None
        self.state = parse_journal(data)
        self.state.torn_bytes = self._log.torn
        if self.state.torn_bytes:
            log.warning("%s: ignored a torn last line (%d bytes) and cut it off",
                        self.path, self.state.torn_bytes)
        if self.state.unreadable:
            log.warning("%s: %d unreadable line(s) ignored", self.path, self.state.unreadable)

    def append(self, records: Iterable[Record]) -> None:
        """Write the records' lines in one ``write(2)``; fsync at most once a second."""
        batch = list(records)
        data = b"".join(record.to_line() for record in batch)
        if not data:
            return
        self._log.append(data)
        for record in batch:
            self.state.last[record.sop_instance_uid] = record
        self._dirty = True
        if time.monotonic() - self._last_sync >= SYNC_INTERVAL_S:
            self.sync()

    def sync(self) -> None:
        if self._dirty:
            self._log.sync()
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        self._dirty = False  # the log fsyncs as it closes
        self._log.close()


def read_journal(path: Path) -> JournalState:
    """The state of a journal without locking it (for --dry-run and for tests)."""
    try:
        return parse_journal(path.read_bytes())
    except FileNotFoundError:
        return JournalState(last={})


def iter_records(path: Path) -> Iterator[Record]:
    """Every readable record, in order (for tests and tools)."""
    data = path.read_bytes()
    for line in data[: data.rfind(b"\n") + 1].split(b"\n"):
        record = Record.from_line(line) if line.strip() else None
        if record is not None:
            yield record
