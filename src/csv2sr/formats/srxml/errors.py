"""The error of the SR XML reader and writer: names the file and the element."""

from __future__ import annotations

from pathlib import Path

from csv2sr.errors import SourceError

__all__ = ["SrXmlError"]


class SrXmlError(SourceError):
    """``<file>: <element path> (line N): <what is wrong>``; nothing is written for the file."""

    def __init__(self, source: str | Path, where: str, message: str) -> None:
        super().__init__(source, f"{where}: {message}" if where else message)
        self.where = where
