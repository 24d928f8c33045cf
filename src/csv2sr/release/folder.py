"""A release folder as the stages left it: what each later stage reads from it.

``OUT/manifest.csv`` (and the SR paths of its converted rows, each checked to be one
convert writes), ``OUT/rejected.csv``, ``OUT/validation.json``, ``OUT/stages/*.status`` and
the input table itself (read by :func:`csv2sr.conversion.read.read_table`, the reader
convert uses, so line numbers agree).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from csv2sr.conversion.read import InputFileError, read_table
from csv2sr.errors import Csv2srError

if TYPE_CHECKING:
    from csv2sr.mapping.spec import Spec

__all__ = [
    "STAGES",
    "ReleaseError",
    "converted_paths",
    "page_relpath",
    "profile_named",
    "read_csv_rows",
    "read_source",
    "read_stages",
    "read_validation",
    "regular_files",
    "release_relpath",
    "severity_name",
]

log = logging.getLogger(__name__)


class ReleaseError(Csv2srError):
    """A release folder lacks what a stage needs, or holds something unreadable."""


STAGES = ("convert", "validate", "dumps", "export")
"""Stages whose exit status and wall time the Makefile records in ``OUT/stages``."""


_SR_PATH = re.compile(r"^sr/[A-Za-z0-9_-][A-Za-z0-9._-]*/[A-Za-z0-9_-][A-Za-z0-9._-]*\.dcm$")
"""A path convert writes (:func:`csv2sr.conversion.group.relpath_of`): two safe names
under ``sr/``."""


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """All rows of a CSV as strings (missing file: no rows)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_source(path: Path, spec: Spec | None = None) -> dict[int, dict[str, str]]:
    """The input table's rows by the physical line each starts on (the header is line 1).

    Read by :func:`csv2sr.conversion.read.read_table`, the reader ``convert`` uses, so the line
    numbers are the manifest's and a multi-line (quoted newline) record keeps its cells.
    A table that cannot be read at all gives no rows (the report says what convert said).
    """
    rows: dict[int, dict[str, str]] = {}
    try:
        options = ({"delimiter": spec.input.delimiter, "encoding": spec.input.encoding}
                   if spec is not None else {})
        with read_table(path, **options) as table:
            for record in table:
                rows[record.line] = record.cells
    except InputFileError as exc:
        log.warning("%s", exc)
    return rows


def read_validation(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path}: not a validation JSON file: {exc}") from exc
    if not isinstance(data, dict):
        raise ReleaseError(f"{path}: not a validation JSON object")
    return data


def read_stages(stage_dir: Path) -> dict[str, tuple[int, float]]:
    """``stage -> (exit status, seconds)`` from ``OUT/stages/<stage>.status``."""
    found: dict[str, tuple[int, float]] = {}
    for stage in STAGES:
        path = stage_dir / f"{stage}.status"
        if not path.is_file():
            continue
        parts = path.read_text(encoding="ascii", errors="replace").split()
        try:
            found[stage] = (int(parts[0]), int(parts[1]) / 1000 if len(parts) > 1 else 0.0)
        except (ValueError, IndexError):
            log.warning("%s: unreadable stage status %r", path, parts)
    return found


def release_relpath(out: Path, value: str) -> str:
    """A path from the validator's JSON as a POSIX path relative to OUT (``sr/P/x.dcm``)."""
    pieces = value.split("/")
    if (out.is_absolute() and pieces[0] == "sr" and "\\" not in value
            and not any(p in ("", ".", "..", "sr") for p in pieces[1:])):
        return value  # written relative to OUT already (validate --relative-to OUT)
    candidate = Path(value)
    for base in (out.resolve(), out):
        try:
            resolved = candidate.resolve() if candidate.is_absolute() else candidate
            return PurePosixPath(resolved.relative_to(base)).as_posix()
        except ValueError:
            continue
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if "sr" in parts:
        return PurePosixPath(*parts[len(parts) - 1 - parts[::-1].index("sr") :]).as_posix()
    return PurePosixPath(value).as_posix()


def severity_name(value: object) -> str:
    text = str(value or "").strip().lower()
    return {"warn": "warning", "err": "error", "information": "info"}.get(text, text or "info")


def page_relpath(relpath: str) -> str:
    """``sr/P/order-0001.dcm`` -> ``sr/P/order-0001.html`` (inside ``report/``)."""
    return PurePosixPath(relpath).with_suffix(".html").as_posix()


def regular_files(folder: Path, suffix: str) -> Iterator[Path]:
    """Regular files ending in ``suffix`` under ``folder``; links are neither followed nor
    listed, hidden names (temporary files) are passed over."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # os.walk never follows links
        for name in files:
            path = Path(root, name)
            if name.endswith(suffix) and not name.startswith(".") and stat.S_ISREG(
                path.lstat().st_mode
            ):
                yield path


def converted_paths(manifest: list[dict[str, str]], out: Path) -> list[str]:
    """The SR paths of the manifest's converted rows, each checked to be one convert writes
    (``sr/<name>/<name>.dcm``): :class:`ReleaseError` for any other (absolute, ``..``)."""
    paths = []
    for row in manifest:
        if row.get("status") != "converted":
            continue
        path = row.get("path") or ""
        if not _SR_PATH.match(path):
            raise ReleaseError(
                f"{out / 'manifest.csv'}: line {row.get('line', '?')}: path {path!r} is not an "
                "SR file under sr/ (the manifest is not one csv2sr convert wrote)"
            )
        paths.append(path)
    return paths


def profile_named(name: str) -> Spec:
    """The profile (a built-in name or a TOML file), as a :class:`ReleaseError` when it
    cannot be loaded."""
    # imported here: the profiles need the codes (pydicom), which check-release and package,
    # the other users of this module, never read
    from csv2sr.mapping.load import ProfileError, load_profile  # noqa: PLC0415

    try:
        return load_profile(name)
    except ProfileError as exc:
        raise ReleaseError(str(exc)) from exc
