"""DIMSE: C-STORE to store (PS3.4 Annex B), C-FIND to verify (PS3.4 C.4.1), pynetdicom.

Each worker keeps one association and sends file after file on it; it asks again only
when the association was lost (aborted, timed out, released by the peer), and counts how
many it opened.  Files are sent as they are on disk: pynetdicom's
``STORE_SEND_CHUNKED_DATASET`` sends the data set bytes after the File Meta Information
without decoding them, on a presentation context proposed for exactly the file's SOP Class
and Transfer Syntax (PS3.8 7.1.1.13; at most 128 per association).

The association's socket has Nagle's algorithm off (``TCP_NODELAY``): a C-STORE request
goes out as several small writes, and with Nagle on each waits for the peer's delayed ACK
(about 40 ms on Linux), which made one C-STORE take ~95 ms on loopback instead of ~50 ms
(and ~5 ms when the server disables Nagle too; DCMTK-based servers do with the environment
variable ``TCP_NODELAY=1``).

C-STORE statuses (PS3.4 Table B.2-1): success and warnings (B000, B006, B007) confirm the
file; 0111 (duplicate SOP instance) says the server already has it; anything else is a
failure reported with the status and its Error Comment (0000,0902).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csv2sr.publish import status
from csv2sr.publish.model import DestinationError, Item, Outcome, Status, TransientError
from csv2sr.publish.retry import RetryPolicy

if TYPE_CHECKING:
    from pynetdicom.association import Association

__all__ = ["CFindVerifier", "CStoreSender", "DimseTarget", "raw_sending"]

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1..255
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # PS3.4 C.6.2.1.1


@dataclass(frozen=True)
class DimseTarget:
    """A DICOM server: host, port, the calling and the called AE titles."""

    host: str
    port: int
    calling_aet: str = "CSV2SR"
    called_aet: str = "ANY-SCP"
    timeout: float = 60.0

    @property
    def display(self) -> str:
        return f"{self.called_aet}@{self.host}:{self.port}"


@contextlib.contextmanager
def raw_sending() -> Iterator[None]:
    """Send files' bytes undecoded while the block runs (pynetdicom's global switch)."""
    from pynetdicom import _config  # noqa: PLC0415  (optional, heavy)

    before = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        yield
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = before


class _Rejections(logging.Handler):
    """pynetdicom says why an association was rejected only in its log: keep those lines
    of this thread."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            message = record.getMessage()
            if message.startswith(("Result:", "Reason:")):
                self.lines.append(message.split(":", 1)[1].strip().rstrip(","))


def contexts_for(items: Sequence[Item]) -> list[tuple[str, str]]:
    """The distinct (SOP Class UID, Transfer Syntax UID) pairs, in first-seen order."""
    return list(dict.fromkeys((i.sop_class_uid, i.transfer_syntax_uid) for i in items))


def _no_delay(event: Any) -> None:
    """EVT_CONN_OPEN handler: turn Nagle's algorithm off on the association's socket."""
    with contextlib.suppress(AttributeError, OSError):
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Associations:
    """One association at a time, made again when lost."""

    def __init__(self, target: DimseTarget, contexts: Sequence[tuple[str, str]]) -> None:
        from pynetdicom import AE  # noqa: PLC0415

        self.target = target
        self.ae = AE(ae_title=target.calling_aet)
        for timeout in ("acse_timeout", "dimse_timeout", "network_timeout"):
            setattr(self.ae, timeout, target.timeout)
        self.ae.connection_timeout = min(10.0, target.timeout)
        for abstract, syntax in contexts[:MAX_CONTEXTS]:
            self.ae.add_requested_context(abstract, [syntax])
        self.assoc: Association | None = None
        self.opened = 0

    def get(self) -> Association:
        if self.assoc is not None and self.assoc.is_established:
            return self.assoc
        capture = _Rejections()
        acse = logging.getLogger("pynetdicom.acse")
        acse.addHandler(capture)
        from pynetdicom import evt  # noqa: PLC0415

        try:
            assoc = self.ae.associate(
                self.target.host, self.target.port, ae_title=self.target.called_aet,
                evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)],
            )
        finally:
            acse.removeHandler(capture)
        if assoc.is_established:
            self.assoc = assoc
            self.opened += 1
            return assoc
        why = ", ".join(capture.lines)
        if assoc.is_rejected and "transient" not in why.lower():
            raise DestinationError(
                self.target.display,
                f"association rejected ({why or 'no reason given'}); check --aet and "
                "--called-aet",
            )
        raise TransientError(
            f"no association ({why or 'connection refused, closed or timed out'})"
        )

    def lost(self) -> None:
        if self.assoc is not None:
            self.assoc.abort()
        self.assoc = None

    def close(self) -> None:
        if self.assoc is not None and self.assoc.is_established:
            self.assoc.release()
        self.assoc = None


def _status_of(answer: Any) -> tuple[int, str] | None:
    code = getattr(answer, "Status", None)
    if code is None:
        return None
    comment = str(getattr(answer, "ErrorComment", "") or "").strip()
    return int(code), comment


class CStoreSender:
    """Stores files with C-STORE over this worker's association."""

    def __init__(self, target: DimseTarget, retry: RetryPolicy,
                 contexts: Sequence[tuple[str, str]]) -> None:
        self.target = target
        self.retry = retry
        self.associations = _Associations(target, contexts)

    @property
    def opened(self) -> int:
        return self.associations.opened

    def close(self) -> None:
        self.associations.close()

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        return [
            self.retry.call(lambda item=item: self._store(item),  # type: ignore[misc]
                            what=f"C-STORE of {item.key}", source=self.target.display)
            for item in items
        ]

    def _store(self, item: Item) -> Outcome:
        assoc = self.associations.get()
        try:
            answer = assoc.send_c_store(item.path)
        except (AttributeError, ValueError) as exc:  # no accepted context, missing meta
            return Outcome(item.key, Status.FAILED, f"not sent: {exc}", "", item)
        except OSError as exc:  # the file was removed since the plan
            return Outcome(item.key, Status.FAILED, f"cannot read: {exc.strerror}", "", item)
        found = _status_of(answer)
        if found is None:
            self.associations.lost()
            raise TransientError("no C-STORE response (association aborted or timed out)")
        code, comment = found
        text = status.describe(code) + (f": {comment}" if comment else "")
        if code == status.DUPLICATE:
            return Outcome(item.key, Status.ALREADY, "the server already has it", f"{code:04X}",
                           item)
        if status.is_failure(code):
            return Outcome(item.key, Status.FAILED, f"refused by the server: C-STORE status "
                           f"{text}", f"{code:04X}", item)
        reason = f"stored with C-STORE status {text}" if code else ""
        return Outcome(item.key, Status.SENT, reason, f"{code:04X}", item)


class CFindVerifier:
    """Finds instances one by one with C-FIND at the IMAGE level of the Study Root
    Query/Retrieve Information Model (PS3.4 C.6.2), over one association."""

    def __init__(self, target: DimseTarget, retry: RetryPolicy) -> None:
        self.target = target
        self.retry = retry
        self.associations = _Associations(target, [(STUDY_ROOT_FIND, "1.2.840.10008.1.2.1")])

    @property
    def opened(self) -> int:
        return self.associations.opened

    def close(self) -> None:
        self.associations.close()

    def find(self, item: Item) -> str | None:
        return self.retry.call(lambda: self._find(item), what=f"C-FIND of {item.key}",
                               source=self.target.display)

    def _find(self, item: Item) -> str | None:
        from pydicom import Dataset  # noqa: PLC0415

        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = item.study_instance_uid or ""
        query.SeriesInstanceUID = item.series_instance_uid or ""
        query.SOPInstanceUID = item.sop_instance_uid
        query.SOPClassUID = ""
        assoc = self.associations.get()
        matches: list[str] = []
        final: tuple[int, str] | None = None
        for answer, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND):
            final = _status_of(answer)
            if final is None:
                self.associations.lost()
                raise TransientError("no C-FIND response (association aborted or timed out)")
            pending = final[0] in (0xFF00, 0xFF01)
            if pending and identifier is not None and (
                identifier.get("SOPInstanceUID") == item.sop_instance_uid
            ):
                matches.append(str(identifier.get("SOPClassUID", "") or ""))
        if final is not None and final[0] != 0x0000:
            return f"C-FIND failed: status {status.describe(final[0])}"
        if not matches:
            return "not found by C-FIND"
        if matches[0] not in ("", item.sop_class_uid):
            return f"found by C-FIND with another SOP Class UID ({matches[0]})"
        return None
