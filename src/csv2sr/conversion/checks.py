"""Check every row of an annotation table before anything is built.

Rows come from the one reader of the table (:mod:`csv2sr.conversion.read`) and are mapped
by the profile (:class:`csv2sr.mapping.forward.Forward`): each cell is parsed by its type
with the value rules of PS3.5 (:mod:`csv2sr.dicom.vr`, the same functions the validator
checks SR values with).  A row breaking any rule becomes a :class:`RowError` naming the
file, the line, the column and the value; the other rows go on.  A checked row is a
:class:`csv2sr.mapping.record.Record`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from csv2sr.conversion.read import InputFileError, RawRow, RowProblem, read_table
from csv2sr.mapping.cells import repair_study_time
from csv2sr.mapping.forward import Forward
from csv2sr.mapping.joins import Join, read_joins
from csv2sr.mapping.record import Record
from csv2sr.mapping.spec import Spec

__all__ = [
    "InputFileError",
    "Record",
    "RowError",
    "RowProblem",
    "check_row",
    "read_rows",
    "repair_study_time",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowError:
    """A rejected row: where it is, every problem found in it, and its cells as written."""

    path: Path
    line: int
    problems: tuple[RowProblem, ...]
    cells: dict[str, str]
    """The cells the record has, by column: a short row has fewer (never ``nan``)."""

    def messages(self) -> list[str]:
        """``file:line: column: what is wrong (value)``, one per problem, one line each."""
        return [f"{self.path}:{self.line}: {p}" for p in self.problems]

    @property
    def reason(self) -> str:
        """All problems of the row in one line, for ``rejected.csv``."""
        return "; ".join(str(p) for p in self.problems)


_FORWARD: dict[int, Forward] = {}


def _forward(spec: Spec) -> Forward:
    forward = _FORWARD.get(id(spec))
    if forward is None or forward.spec is not spec:
        forward = _FORWARD[id(spec)] = Forward(spec)
    return forward


def check_row(cells: dict[str, str], *, path: Path, line: int, spec: Spec) -> Record | RowError:
    """Check one row against every rule; return its :class:`Record` or a :class:`RowError`.

    Every column is checked, so a row with several defects lists them all.  Duplicate
    values of unique columns across rows are checked by :func:`read_rows`, which sees
    them all.
    """
    result = _forward(spec)(cells, line)
    if isinstance(result, Record):
        return result
    return RowError(path, line, tuple(result), cells)


def read_rows(path: Path, spec: Spec) -> Iterator[Record | RowError]:
    """Yield every data row of ``path`` as a :class:`Record` or a :class:`RowError`.

    Streams the table (memory stays flat however long it is).  Raises
    :class:`InputFileError` when the file as a whole is unusable (see
    :class:`csv2sr.conversion.read.Table`; also a header without data rows).  Rows with
    the wrong number of fields, cells that cannot be read, and duplicate values of a
    unique column are rejected, never dropped.
    """
    seen: dict[tuple[str, str], int] = {}
    rows = 0
    forward = _forward(spec)
    joins = read_joins(spec) if spec.joins else ()  # JoinError before any row
    with read_table(path, spec.input.required, delimiter=spec.input.delimiter,
                    encoding=spec.input.encoding) as table:
        width = len(table.header)
        for record in table:
            rows += 1
            yield _row(*_joined(record, joins), width, path, forward, seen)
    if rows == 0:
        raise InputFileError(path, "header only: no data rows")


def _joined(raw: RawRow, joins: tuple[Join, ...]) -> tuple[RawRow, dict[str, str]]:
    """The row, and its cells with the columns its joins give (``[[joins]]``); a key not
    in its join file is a problem of the row."""
    if not joins or raw.problems:
        return raw, raw.cells
    cells = dict(raw.cells)
    problems: list[RowProblem] = []
    for join in joins:
        found = join.cells(raw.cells)
        if isinstance(found, RowProblem):
            problems.append(found)
        else:
            cells.update(found)
    if problems:
        return replace(raw, problems=tuple(problems)), raw.cells
    return raw, cells


def _row(
    raw: RawRow, cells: dict[str, str], width: int, path: Path, forward: Forward,
    seen: dict[tuple[str, str], int],
) -> Record | RowError:
    if raw.problems:
        return RowError(path, raw.line, raw.problems, raw.cells)
    count = len(raw.cells) + len(raw.extra)
    if count != width:
        # the extra cells are kept in the problem's value, so nothing written is lost
        value = ",".join(raw.extra) if raw.extra else str(count)
        problem = RowProblem("(row)", f"{count} fields where the header has {width}", value)
        return RowError(path, raw.line, (problem,), raw.cells)
    result = forward(cells, raw.line)
    if not isinstance(result, Record):
        return RowError(path, raw.line, tuple(result), raw.cells)
    return _check_unique(result, seen, path)


def _check_unique(row: Record, seen: dict[tuple[str, str], int], path: Path) -> Record | RowError:
    problems = []
    for key in row.keys:
        first = seen.setdefault(key, row.line)
        if first != row.line:
            problems.append(RowProblem(key[0], f"duplicate of line {first}", key[1]))
    if problems:
        return RowError(path, row.line, tuple(problems), row.cells)
    return row
