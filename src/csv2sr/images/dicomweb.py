"""The DICOMweb requests of the image index (:meth:`csv2sr.images.index.ImageIndex.from_dicomweb`):
bounded retries of a request that got no answer, and the one-line reason of a failure."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Tries", "all_studies"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class Tries:
    """Bounded retries of one DICOMweb request that got no answer: dicomweb-client retries
    the HTTP statuses it was given (set_http_retry_params), not a timeout or a refused or
    dropped connection, which a busy or restarting server gives as often."""

    def __init__(self, base: str, attempts: int, timeout: float) -> None:
        self.base, self.attempts, self.timeout = base, attempts, timeout

    def call(self, what: str, request: Callable[..., _T], *args: Any) -> _T:
        import requests  # noqa: PLC0415  (with dicomweb-client)

        for attempt in range(1, self.attempts + 1):
            try:
                return request(*args)
            except (requests.Timeout, requests.ConnectionError) as exc:
                if attempt == self.attempts:
                    raise
                wait = 0.25 * 2 ** (attempt - 1)
                log.warning("%s: %s: %s; try %d of %d in %.2g s", self.base, what,
                            self.why(exc), attempt + 1, self.attempts, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def why(self, exc: Exception) -> str:
        """One line for a failed request (requests' own text names the pool and the
        urllib3 exception chain)."""
        import requests  # noqa: PLC0415

        tried = f" ({self.attempts} tries)" if self.attempts > 1 else ""
        if isinstance(exc, requests.Timeout):
            return f"no answer within {self.timeout:g} s{tried}"
        if isinstance(exc, requests.ConnectionError):
            return f"cannot connect or the connection dropped{tried}"
        return str(exc)


def all_studies(client: Any) -> list[str]:
    """Every Study Instance UID the server lists (QIDO-RS, PS3.18 10.6), sorted."""
    found = client.search_for_studies(fields=["StudyInstanceUID"], get_remaining=True)
    uids = []
    for item in found:
        value = item.get("0020000D", {}).get("Value", [])
        if value:
            uids.append(str(value[0]))
    return sorted(set(uids))
