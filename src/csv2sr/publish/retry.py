"""Bounded retries with exponential backoff, and the server's Retry-After.

A :class:`~csv2sr.publish.model.TransientError` (timeout, refused connection, HTTP 408,
429, 5xx, aborted association) is retried ``attempts - 1`` times; the wait doubles from
``base`` up to ``cap`` seconds, with jitter so that workers do not retry in step, and a
Retry-After (RFC 9110 10.2.3: seconds or an HTTP date) replaces it, bounded by ``cap``.
The wait ends early when the run is stopping, so a Ctrl-C never waits out a backoff.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from csv2sr.publish.model import DestinationError, TransientError

__all__ = ["RetryPolicy", "StoppedError", "parse_retry_after"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoppedError(Exception):
    """The run is stopping (another worker hit a fatal error, or Ctrl-C)."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, or None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@dataclass
class RetryPolicy:
    """``attempts`` tries in all (1 = no retry); waits ``base``, 2*``base``, ... <= ``cap``."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    stop: threading.Event = field(default_factory=threading.Event)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.cap)
        ceiling = min(self.cap, self.base * 2.0 ** (retry - 1))
        jitter: float = random.uniform(0, ceiling / 2)  # spreads workers; not crypto
        return ceiling / 2 + jitter

    def call(self, action: Callable[[], T], *, what: str, source: str) -> T:
        """Run ``action``; retry it on TransientError; raise DestinationError when every
        attempt failed, StoppedError when the run is stopping."""
        for attempt in range(1, self.attempts + 1):
            if self.stop.is_set():
                raise StoppedError
            try:
                return action()
            except TransientError as exc:
                if attempt == self.attempts:
                    raise DestinationError(
                        source, f"{what}: {exc} (gave up after {attempt} attempts)"
                    ) from exc
                wait = self.delay(attempt, exc.retry_after)
                log.warning("%s: %s; retry %d of %d in %.1f s",
                            what, exc, attempt, self.attempts - 1, wait)
                if self.stop.wait(wait):
                    raise StoppedError from exc
        raise AssertionError("unreachable")  # pragma: no cover
