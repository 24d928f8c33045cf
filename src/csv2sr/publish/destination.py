"""Where to publish: a DICOMweb root (STOW-RS) or a DICOM server (C-STORE), parsed from
the command line, named for its journal, and able to make senders and verifiers."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol
from urllib.parse import urlsplit

from csv2sr.publish.dicomweb import DicomwebTarget, QidoVerifier, StowSender
from csv2sr.publish.dimse import CFindVerifier, CStoreSender, DimseTarget, raw_sending
from csv2sr.publish.model import Item, Outcome, PublishUsageError
from csv2sr.publish.retry import RetryPolicy

__all__ = [
    "Destination",
    "DicomwebDestination",
    "DimseDestination",
    "Sender",
    "Verifier",
    "parse_host_port",
    "parse_url",
]

log = logging.getLogger(__name__)

_AET = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 6.2 AE: no backslash, no control


class Sender(Protocol):
    @property
    def opened(self) -> int: ...

    def send(self, items: Sequence[Item]) -> list[Outcome]: ...
    def close(self) -> None: ...


class Verifier(Protocol):
    def find(self, item: Item) -> str | None: ...
    def close(self) -> None: ...


class Destination(Protocol):
    display: str
    batched: bool

    def journal_name(self) -> str: ...
    def sender(self, retry: RetryPolicy, items: Sequence[Item]) -> Sender: ...
    def verifier(self, retry: RetryPolicy) -> Verifier: ...
    def context(self) -> AbstractContextManager[None]: ...


def _journal_name(label: str, canonical: str) -> str:
    """``stow-127.0.0.1-8042-<hash>.jsonl``: readable, and distinct per destination."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_.")
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:10]
    return f"{slug}-{digest}.jsonl"


def parse_url(url: str) -> str:
    """The DICOMweb root without a trailing slash; http(s), a host, no credentials."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise PublishUsageError("--url", "not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublishUsageError("--url", "give an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise PublishUsageError(
            "--url", "credentials in the URL are refused (a command line is visible to "
            "every user and lands in logs); use --basic-env or --basic-file",
        )
    if parts.query or parts.fragment:
        raise PublishUsageError("--url", "give the DICOMweb root, without ?query or #fragment")
    del port
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PublishUsageError("--dimse", f"give HOST:PORT, not {text!r}")
    return host, int(port)


def check_aet(option: str, value: str) -> str:
    if not _AET.match(value) or not value.strip():
        raise PublishUsageError(option, f"{value!r} is not an AE title (1-16 characters)")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DicomwebDestination:
    """STOW-RS batches, verified with QIDO-RS."""

    batched = True

    def __init__(self, target: DicomwebTarget) -> None:
        self.target = target
        self.display = target.url
        parts = urlsplit(target.url)
        if target.credentials is not None and parts.scheme == "http" and not _is_loopback(
            parts.hostname or ""
        ):
            log.warning("%s: credentials sent over plain http (no TLS)", target.url)

    def journal_name(self) -> str:
        parts = urlsplit(self.target.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = (parts.hostname or "").lower()
        canonical = f"{parts.scheme}://{host}:{port}{parts.path}"
        return _journal_name(f"stow-{host}-{port}", canonical)

    def sender(self, retry: RetryPolicy, items: Sequence[Item]) -> Sender:
        del items
        return _Counted(StowSender(self.target, retry))

    def verifier(self, retry: RetryPolicy) -> Verifier:
        return QidoVerifier(self.target, retry)

    def context(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


class _Counted:
    """A STOW sender seen as a Sender (no associations to count)."""

    opened = 0

    def __init__(self, inner: StowSender) -> None:
        self.inner = inner

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        return self.inner.send(items)

    def close(self) -> None:
        self.inner.close()


class DimseDestination:
    """C-STORE, one file at a time on each worker's association; verified with C-FIND."""

    batched = False

    def __init__(self, target: DimseTarget) -> None:
        self.target = target
        self.display = target.display

    def journal_name(self) -> str:
        host = self.target.host.lower()
        canonical = f"dimse://{self.target.called_aet}@{host}:{self.target.port}"
        return _journal_name(f"dimse-{self.target.called_aet}-{host}-{self.target.port}",
                             canonical)

    def sender(self, retry: RetryPolicy, items: Sequence[Item]) -> Sender:
        from csv2sr.publish.dimse import contexts_for  # noqa: PLC0415

        return CStoreSender(self.target, retry, contexts_for(items))

    def verifier(self, retry: RetryPolicy) -> Verifier:
        return CFindVerifier(self.target, retry)

    def context(self) -> AbstractContextManager[None]:
        return raw_sending()
