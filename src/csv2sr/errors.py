"""The package's typed errors: every one names the file (or source) it is about."""

from __future__ import annotations

from pathlib import Path

__all__ = ["Csv2srError", "SourceError"]


class Csv2srError(Exception):
    """Base of every error csv2sr raises on purpose."""


class SourceError(Csv2srError):
    """Something about one file, folder or server: ``str()`` is ``"<source>: <message>"``."""

    def __init__(self, source: str | Path, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message

    @property
    def path(self) -> Path:
        """The source as a path (for errors about files)."""
        return Path(self.source)
