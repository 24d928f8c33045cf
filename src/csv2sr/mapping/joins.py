"""Join tables (``[[joins]]``): a second table that gives each row more columns by a key.

A published annotation table often names only a series (LUNA16: ``seriesuid``); the study
and patient are in another file (``series-map.txt``: PatientID StudyInstanceUID
SeriesInstanceUID).  :func:`read_join` reads such a file once (csv, tsv, or
whitespace-separated with trailing spaces and CRLF line ends, as LUNA16 writes it) and
refuses a key found twice (naming the file, both lines and the key); :meth:`Join.cells`
gives a row its provided columns, or the problem that its key is not in the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from csv2sr.errors import SourceError
from csv2sr.mapping.record import RowProblem
from csv2sr.mapping.spec import JoinSpec, Spec

__all__ = ["Join", "JoinError", "read_join", "read_joins", "with_join_files"]


class JoinError(SourceError):
    """A join file that cannot be used: ``str()`` is ``"<file>:<line>: <what is wrong>"``."""


@dataclass(frozen=True)
class Join:
    """A join file read: key (the ``on`` cells) -> the provided cells."""

    spec: JoinSpec
    rows: Mapping[tuple[str, ...], dict[str, str]]

    def cells(self, cells: Mapping[str, str]) -> dict[str, str] | RowProblem:
        """The columns this join gives the row, or the problem naming the key column,
        its value and the join file."""
        key = tuple(cells.get(c, "").strip() for c in self.spec.columns)
        found = self.rows.get(key)
        if found is None:
            column = self.spec.columns[0]
            return RowProblem(column, f"no line of the join file {self.spec.path} "
                              f"(joins {self.spec.name!r}) has this key in "
                              f"{'/'.join(self.spec.on)}", " ".join(key))
        return found


def _lines(path: Path, kind: str) -> Iterator[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise JoinError(path, "no such join file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JoinError(path, f"cannot be read: {exc}") from None
    if kind == "whitespace":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield number, line.split()
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "tsv" else ",")
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                yield reader.line_num, [f.strip() for f in fields]
    except csv.Error as exc:
        raise JoinError(path, f"line {reader.line_num}: not {kind.upper()}: {exc}") from None


def read_join(spec: JoinSpec) -> Join:
    """Read one join file; :class:`JoinError` for a missing column, a short line or a
    duplicate key (PS3.3 C.7.3.1: one Series Instance UID names one series)."""
    path = spec.path
    lines = _lines(path, spec.format)
    first = next(lines, None)
    if first is None:
        raise JoinError(path, "empty: the first line must name the columns")
    header = first[1]
    missing = [c for c in (*spec.on, *spec.provides) if c not in header]
    if missing:
        raise JoinError(f"{path}:{first[0]}", f"no column {', '.join(map(repr, missing))} "
                        f"(joins {spec.name!r}; the first line has {', '.join(header)})")
    on = [header.index(c) for c in spec.on]
    provides = [(c, header.index(c)) for c in spec.provides]
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    where: dict[tuple[str, ...], int] = {}
    for number, fields in lines:
        if len(fields) != len(header):
            raise JoinError(f"{path}:{number}", f"{len(fields)} fields where the first line "
                            f"has {len(header)}")
        key = tuple(fields[i] for i in on)
        if key in rows:
            raise JoinError(f"{path}:{number}", f"duplicate key {' '.join(key)!r} in "
                            f"{'/'.join(spec.on)} (first on line {where[key]})")
        rows[key] = {c: fields[i] for c, i in provides}
        where[key] = number
    return Join(spec, rows)


def read_joins(spec: Spec) -> tuple[Join, ...]:
    """Every join of the profile, read."""
    return tuple(read_join(j) for j in spec.joins)


def with_join_files(spec: Spec, files: Mapping[str, Path]) -> Spec:
    """The profile with other join files (``convert --join NAME=PATH``); a NAME the profile
    has no join of is a :class:`JoinError` naming the profile."""
    known = {j.name for j in spec.joins}
    for name in files:
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise JoinError(spec.path or spec.name, f"--join {name}=...: the profile has no "
                            f"join {name!r} (its joins: {names})")
    joins = tuple(replace(j, path=Path(files[j.name])) if j.name in files else j
                  for j in spec.joins)
    return replace(spec, joins=joins)
