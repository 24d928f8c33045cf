"""Checked rows -> documents: one SR per row, or per image, series or study (and observer).

``document.per = "row"`` streams: each record is a document at once.  The other groupings
need every row before the first SR is complete, so their records are held (a record is
small: 20,000 rows are a few MiB) and the documents follow in the order of their first row.
Rejected rows pass through unchanged.  Each document gets its file name (the profile's
``file_name`` of its first row, each part made safe by
:func:`csv2sr.conversion.outputs.safe_name`), its Instance Number and the key its SR Series
Instance UID is derived from.  Two documents may not share a file name, and (without
``by_observer``) the rows of one SR must have one observer: a row breaking either is
rejected, naming the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from csv2sr.conversion.checks import RowError
from csv2sr.conversion.outputs import safe_name
from csv2sr.mapping.record import Document, Observer, Record, RowProblem
from csv2sr.mapping.spec import Spec, template_fields

__all__ = ["document_identity", "documents", "relpath_of", "single"]


def relpath_of(record: Record) -> str:
    """``sr/<safe folder>/<safe name>.dcm`` from the record's ``file_name``."""
    folder, _, name = record.file_name.partition("/")
    stem = name[: -len(".dcm")] if name.endswith(".dcm") else name
    return f"sr/{safe_name(folder)}/{safe_name(stem)}.dcm"


def document_identity(records: tuple[Record, ...]) -> tuple[str, ...]:
    """The UID derivation parts of a document: its record's identity, or the sorted
    identities of its records (:mod:`csv2sr.dicom.uids`)."""
    if len(records) == 1:
        return records[0].identity
    return tuple(sorted("\x1e".join(r.identity) for r in records))


def _series_key(records: tuple[Record, ...], spec: Spec) -> tuple[str, ...]:
    """``series = "study"``: one SR series per study; ``"document"``: one per SR."""
    if spec.document.series == "study":
        return (records[0].study_uid,)
    return document_identity(records)


def single(record: Record, spec: Spec, number: int = 1) -> Document:
    """The document of one record alone (``per = "row"``)."""
    instance = record.instance_number if record.instance_number is not None else number
    return Document((record,), relpath_of(record), instance, _series_key((record,), spec))


def _group_key(record: Record, spec: Spec) -> tuple[str, ...]:
    per = spec.document.per
    image = record.images[0]
    key: tuple[str, ...] = (record.study_uid,)
    if per in ("series", "image"):
        key = (*key, image.series_uid)
    if per == "image":
        key = (*key, image.sop_instance_uid)
    if spec.document.by_observer:
        key = (*key, _observer_key(record.observer))
    return key


def _observer_key(observer: Observer) -> str:
    return "\x1e".join((observer.kind, observer.name, observer.login, observer.device_uid,
                        observer.role.label() if observer.role else ""))


class _Grouping:
    def __init__(self, spec: Spec, path: Path) -> None:
        self.spec = spec
        self.path = path
        self.paths: dict[str, int] = {}
        name_columns = template_fields(spec.document.file_name) or ("(row)",)
        self.name_column = name_columns[0]
        observer = spec.observer.name.columns or ("(row)",)
        self.observer_column = observer[0]

    def claim(self, record: Record, relpath: str) -> RowError | None:
        first = self.paths.setdefault(relpath, record.line)
        if first == record.line:
            return None
        return self.reject(record, self.name_column,
                           f"its SR file name {relpath} is that of line {first} "
                           "(document.file_name must name each SR once)")

    def reject(self, record: Record, column: str, message: str) -> RowError:
        problem = RowProblem(column, message, record.cells.get(column, ""))
        return RowError(self.path, record.line, (problem,), record.cells)


def documents(
    items: Iterable[Record | RowError], spec: Spec, path: Path
) -> Iterator[Document | RowError]:
    """The documents of the profile's grouping, with the rejected rows (``path`` is the
    table, named in the rejections made here)."""
    grouping = _Grouping(spec, path)
    if spec.document.per == "row":
        yield from _per_row(items, spec, grouping)
    else:
        yield from _grouped(items, spec, grouping)


def _per_row(
    items: Iterable[Record | RowError], spec: Spec, grouping: _Grouping
) -> Iterator[Document | RowError]:
    count = 0
    for item in items:
        if isinstance(item, RowError):
            yield item
            continue
        count += 1
        document = single(item, spec, count)
        yield grouping.claim(item, document.relpath) or document


def _grouped(
    items: Iterable[Record | RowError], spec: Spec, grouping: _Grouping
) -> Iterator[Document | RowError]:
    groups: dict[tuple[str, ...], list[Record]] = {}
    for item in items:
        if isinstance(item, RowError):
            yield item
            continue
        members = groups.setdefault(_group_key(item, spec), [])
        if members and not spec.document.by_observer and item.observer != members[0].observer:
            yield grouping.reject(
                item, grouping.observer_column,
                f"the observer differs from that of line {members[0].line}, in the same SR "
                "(document.by_observer = true makes one SR per observer)")
            continue
        members.append(item)
    for count, members in enumerate(groups.values(), start=1):
        records = tuple(members)
        relpath = relpath_of(records[0])
        clash = grouping.claim(records[0], relpath)
        if clash is not None:
            yield clash
            for record in records[1:]:
                yield grouping.reject(record, clash.problems[0].column, clash.problems[0].message)
            continue
        numbers = [r.instance_number for r in records if r.instance_number is not None]
        yield Document(records, relpath, min(numbers) if numbers else count,
                       _series_key(records, spec))
