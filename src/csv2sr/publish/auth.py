"""Credentials for a DICOMweb server: a bearer token or basic auth, from an environment
variable or a file, never from the command line.

The secret is held by :class:`Credentials`, whose ``repr`` and ``str`` hide it, and is
handed to ``requests`` only as an auth object that sets the Authorization header of each
request (RFC 6750 2.1 ``Bearer``; RFC 7617 ``Basic``).  Nothing here logs it, and the
error messages name where the secret came from, not what it is.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from csv2sr.publish.model import PublishUsageError

if TYPE_CHECKING:
    import requests

__all__ = ["Credentials", "load_credentials"]

Kind = Literal["bearer", "basic"]


@dataclass(frozen=True)
class Credentials:
    """A secret and where it came from (``"$NAME"`` or a file path), for messages."""

    kind: Kind
    origin: str
    secret: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.kind} credentials from {self.origin}"

    def header(self) -> str:
        """The value of the Authorization header."""
        if self.kind == "bearer":
            return f"Bearer {self.secret}"
        return "Basic " + base64.b64encode(self.secret.encode("utf-8")).decode("ascii")

    def requests_auth(self) -> requests.auth.AuthBase:
        """An auth object for a requests session (sets the header on every request)."""
        import requests.auth  # noqa: PLC0415  (optional dependency, loaded late)

        header = self.header()

        class _Header(requests.auth.AuthBase):
            def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
                request.headers["Authorization"] = header
                return request

            def __repr__(self) -> str:
                return "<Authorization hidden>"

        return _Header()


def _from_env(name: str) -> tuple[str, str]:
    value = os.environ.get(name)
    if value is None:
        raise PublishUsageError(f"${name}", "environment variable not set")
    return value, f"${name}"


def _from_file(path: Path) -> tuple[str, str]:
    try:
        value = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PublishUsageError(path, f"cannot read the credentials: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PublishUsageError(path, "the credentials are not UTF-8 text") from None
    return value, os.fspath(path)


def load_credentials(
    *,
    token_env: str | None = None,
    token_file: Path | None = None,
    basic_env: str | None = None,
    basic_file: Path | None = None,
) -> Credentials | None:
    """The one credential source given (or None).  A token is the value stripped of
    surrounding white space; basic auth is ``user:password`` (the first line)."""
    given = [
        (kind, source)
        for kind, source in (("bearer", token_env), ("bearer", token_file),
                             ("basic", basic_env), ("basic", basic_file))
        if source is not None
    ]
    if not given:
        return None
    if len(given) > 1:
        raise PublishUsageError(
            "credentials", "give one of --token-env, --token-file, --basic-env, --basic-file"
        )
    kind, source = given[0]
    value, origin = _from_file(source) if isinstance(source, Path) else _from_env(source)
    secret = value.strip() if kind == "bearer" else value.splitlines()[0] if value else ""
    if not secret:
        raise PublishUsageError(origin, "the credentials are empty")
    if kind == "basic" and ":" not in secret:
        raise PublishUsageError(origin, "basic credentials must be written user:password")
    if any(ch in secret for ch in "\r\n"):
        raise PublishUsageError(origin, "the token spans several lines")
    return Credentials(kind=kind, origin=origin, secret=secret)  # type: ignore[arg-type]
