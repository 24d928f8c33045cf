"""What to publish: the DICOM files under the paths given, their UIDs, and what the
journal already confirms.

Each file is read once, whole, for its SHA-256, and its header is parsed up to Series
Instance UID (0020,000E) only: SOP Class UID (0008,0016), SOP Instance UID (0008,0018),
Study Instance UID (0020,000D), Series Instance UID and, from the File Meta Information
(PS3.10 7.1), the Transfer Syntax UID (0002,0010).  A file without a SOP Instance UID or
File Meta Information cannot be sent nor confirmed and fails here; a file lacking other
attributes is sent, and the server judges it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from csv2sr.inputs import InputPathError, input_files
from csv2sr.publish.journal import JournalState, Record
from csv2sr.publish.model import Item, Outcome, PublishUsageError, Status

__all__ = ["Plan", "find_release_root", "make_plan", "read_item"]

log = logging.getLogger(__name__)

_LAST_TAG = 0x0020000E  # Series Instance UID: the header is read up to here


def find_release_root(paths: Sequence[Path]) -> Path | None:
    """The nearest folder at or above the first path that holds a release
    (``manifest.csv`` and ``sr/``, as ``csv2sr convert -o OUT`` leaves them)."""
    if not paths:
        return None
    start = paths[0].resolve()
    for folder in (start, *start.parents) if start.is_dir() else start.parents:
        if (folder / "manifest.csv").is_file() and (folder / "sr").is_dir():
            return folder
    return None


def _key(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def read_item(path: Path, root: Path | None = None) -> Item | Outcome:
    """The file's :class:`Item`, or a FAILED outcome saying why it cannot be sent."""
    from pydicom.errors import InvalidDicomError  # noqa: PLC0415  (heavy, loaded late)
    from pydicom.filereader import read_partial  # noqa: PLC0415

    key = _key(path, root)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Outcome(key, Status.FAILED, f"cannot read: {exc.strerror}")
    try:
        header = read_partial(
            io.BytesIO(data), stop_when=lambda tag, _vr, _length: tag > _LAST_TAG
        )
    except (InvalidDicomError, EOFError, ValueError, OSError, KeyError) as exc:
        return Outcome(key, Status.FAILED, f"not a readable DICOM file: {exc}")
    meta = getattr(header, "file_meta", None)
    syntax = _text(getattr(meta, "TransferSyntaxUID", None)) if meta is not None else None
    if syntax is None:
        return Outcome(key, Status.FAILED, "no File Meta Information (PS3.10 7.1): not sent")
    instance = _text(header.get("SOPInstanceUID"))
    if instance is None:
        return Outcome(key, Status.FAILED, "no SOP Instance UID (0008,0018): not sent")
    sop_class = _text(header.get("SOPClassUID")) or _text(
        getattr(meta, "MediaStorageSOPClassUID", None)
    )
    if sop_class is None:
        return Outcome(key, Status.FAILED, "no SOP Class UID (0008,0016): not sent")
    return Item(
        path=path, key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        sop_instance_uid=instance, sop_class_uid=sop_class, transfer_syntax_uid=syntax,
        study_instance_uid=_text(header.get("StudyInstanceUID")),
        series_instance_uid=_text(header.get("SeriesInstanceUID")),
    )


@dataclass
class Plan:
    """Every readable file once (in path order), and the files that cannot be sent."""

    items: list[Item] = field(default_factory=list)
    failures: list[Outcome] = field(default_factory=list)

    def split(self, state: JournalState) -> tuple[list[Item], list[tuple[Item, Record]]]:
        """(files to send, files the journal confirms with their record)."""
        to_send: list[Item] = []
        confirmed: list[tuple[Item, Record]] = []
        for item in self.items:
            record = state.confirmed(item.sop_instance_uid, item.sha256)
            if record is not None:
                confirmed.append((item, record))
                continue
            previous = state.last.get(item.sop_instance_uid)
            if previous is not None and previous.event != "missing":
                log.warning("%s: changed since it was confirmed on %s; sent again",
                            item.key, previous.time)
            to_send.append(item)
        return to_send, confirmed


def _files(paths: Iterable[Path]) -> list[Path]:
    try:
        return list(input_files(paths))
    except InputPathError as exc:
        raise PublishUsageError(exc.source, exc.message) from None


def make_plan(paths: Sequence[Path], root: Path | None) -> Plan:
    """Read every DICOM file under ``paths`` (folders recursively: ``*.dcm`` and any file
    with the DICM prefix; journals and manifests are passed over)."""
    plan = Plan()
    seen: dict[str, Item] = {}
    for path in _files(paths):
        found = read_item(path, root)
        if isinstance(found, Outcome):
            plan.failures.append(found)
            continue
        first = seen.get(found.sop_instance_uid)
        if first is None:
            seen[found.sop_instance_uid] = found
            plan.items.append(found)
        elif first.sha256 == found.sha256:
            log.warning("%s: a copy of %s, sent once", found.key, first.key)
        else:
            plan.failures.append(Outcome(
                found.key, Status.FAILED,
                f"same SOP Instance UID as {first.key} but other bytes: not sent",
            ))
    if not plan.items and not plan.failures:
        raise PublishUsageError(", ".join(os.fspath(p) for p in paths), "no DICOM files")
    return plan
