"""What a publish run works on and what it reports: files, outcomes, the run's result.

A file is identified on the server by its SOP Instance UID (PS3.3 C.12.1, (0008,0018)) and
in the journal by that UID together with the SHA-256 of its bytes, so a file rewritten
since it was confirmed is sent again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from csv2sr.errors import SourceError

__all__ = [
    "DestinationError",
    "Item",
    "Outcome",
    "PublishResult",
    "PublishUsageError",
    "Status",
    "TransientError",
]


class PublishUsageError(SourceError):
    """A bad option or input (exit status 2): a malformed URL, a missing credential."""


class DestinationError(SourceError):
    """The destination cannot take anything now (exit status 1), and the run stops: the
    credentials were refused, there is no service at the URL, the TLS certificate is not
    trusted, or the server stayed unreachable through every retry.  ``source`` is the
    destination as displayed (never with a secret)."""


class TransientError(Exception):
    """A fault worth retrying: a timeout, a refused or dropped connection, HTTP 408, 429,
    5xx, an aborted association.  ``retry_after`` is the server's Retry-After in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Item:
    """One DICOM file to publish, as read from its header (no pixel or content data).

    ``key`` is the path shown to the user and written in the journal: relative to the
    release folder when the file is inside it.
    """

    path: Path
    key: str
    size: int
    sha256: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None


class Status(str, enum.Enum):
    """What became of one file in this run."""

    SENT = "sent"  # the server confirmed it in this run
    ALREADY = "already"  # confirmed by an earlier run (journal), or the server had it
    FAILED = "failed"  # refused by the server, or unreadable here: never confirmed
    NOT_SENT = "not-sent"  # the run stopped before the file's turn (rerun to resume)


@dataclass(frozen=True)
class Outcome:
    """The server's (or the planner's) word on one file.  ``code`` is the status as the
    server gave it (``"0000"``, ``"B000"``, ``"HTTP 400"``); ``reason`` is the text shown."""

    key: str
    status: Status
    reason: str = ""
    code: str = ""
    item: Item | None = None

    @property
    def confirmed(self) -> bool:
        return self.status in (Status.SENT, Status.ALREADY)


@dataclass
class PublishResult:
    """The summary of a run (``sent``, ``already there``, ``failed``, seconds, files/s)."""

    destination: str
    journal: Path | None
    total: int = 0
    sent: int = 0
    already: int = 0
    failures: list[Outcome] = field(default_factory=list)
    not_sent: int = 0
    warnings: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str | None = None  # why the run stopped early (a DestinationError message)
    interrupted: bool = False
    interrupt_status: int = 130  # 128 + the signal that interrupted the run (SIGINT 130)
    verified: int | None = None  # None: --verify was not asked
    missing: list[Outcome] = field(default_factory=list)
    associations: int = 0  # DIMSE associations opened (0 for DICOMweb)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def rate(self) -> float:
        """Files sent per second of the run."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every file confirmed (and, with --verify, found on the server)."""
        return (
            not self.failures and not self.not_sent and not self.missing
            and self.stopped is None and not self.interrupted
        )
