"""The warm-up of a grouped table (csv2sr.conversion.batch.Warmup): while the parent still
checks the rows (a grouped table gives its first SR only once every row is read), each
worker builds the SR of the first row alone, so that the first documents find their
templates made.  Nothing it does may change a byte of the output."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from csv2sr.conversion import batch, build
from csv2sr.conversion.checks import RowError, RowProblem, read_rows
from csv2sr.conversion.group import documents
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile
from csv2sr.mapping.record import Record
from profilegen import generate_rows, profile_path, write_table

GROUPED = "boxes-fraction"  # per = "series": several rows in one SR


def _table(tmp_path: Path, rows: int, seed: int = 11) -> tuple[Any, Path]:
    spec = load_profile(profile_path(GROUPED))
    assert spec.document.per != "row"
    return spec, write_table(tmp_path / "t.csv", spec, generate_rows(spec, rows, seed=seed))


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every highdicom build from now on (the fast path imports encode_document late)."""
    calls: list[int] = []
    real: Callable[..., Any] = build.encode_document

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "encode_document", counted)
    return calls


def test_a_warm_worker_builds_nothing_for_the_first_documents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, table = _table(tmp_path, 60)
    records = list(read_rows(table, spec))
    first = records[0]
    assert isinstance(first, Record)
    docs = [d for d in documents(iter(records), spec, table) if not isinstance(d, RowError)]
    assert max(len(d.records) for d in docs[:5]) > 1  # composed from pieces

    cold = batch._Worker(table, tmp_path / "cold", spec, CodeMode.SCT, None, True)
    warm = batch._Worker(table, tmp_path / "warm", spec, CodeMode.SCT, None, True)
    warm.warm(first)
    builds = _counting(monkeypatch)
    for document in docs[:5]:
        warm.handle(document)
    assert builds == []  # every template was made by the warm-up
    for document in docs[:5]:
        cold.handle(document)
    assert builds  # the same documents cost builds without it
    for document in docs[:5]:
        relpath = Path(document.relpath)
        assert (tmp_path / "warm" / relpath).read_bytes() == (
            tmp_path / "cold" / relpath).read_bytes()


def test_the_warm_up_is_sent_once_for_the_first_row_that_was_checked_good() -> None:
    rejected = RowError(Path("t.csv"), 2, (RowProblem("x", "bad", "1"),), {})
    sent: list[Any] = []
    warmup = batch.Warmup(send=sent.append)
    first, second = object.__new__(Record), object.__new__(Record)
    stream = list(warmup.tap(iter([rejected, first, second])))
    assert stream == [rejected, first, second]  # everything passes through, in order
    assert sent == [first]

    late = batch.Warmup()  # the pool was not there when the first row came: never sent
    rows = late.tap(iter([first, second]))
    assert next(rows) is first
    late.send = sent.append
    assert list(rows) == [second]
    assert sent == [first]


def test_a_pool_with_the_warm_up_writes_the_bytes_of_one_process(tmp_path: Path) -> None:
    spec, table = _table(tmp_path, 300, seed=5)
    alone = batch.convert(table, tmp_path / "one", jobs=1, profile=spec)
    pooled = batch.convert(table, tmp_path / "two", jobs=2, profile=spec)
    assert alone.documents == pooled.documents > 1
    assert alone.rejected == pooled.rejected == 0
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*")
                   if p.is_file() and "cache" not in p.parts)
    assert files
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_the_warm_up_says_nothing_and_leaves_logging_as_it_was(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A warm-up that fails is silent (the row's own document reports what is wrong, and
    the warm-up's document is never written); the worker's logging is as before after."""
    spec, table = _table(tmp_path, 5)
    first = next(r for r in read_rows(table, spec) if isinstance(r, Record))
    worker = batch._Worker(table, tmp_path / "out", spec, CodeMode.SCT, None, True)
    assert worker.fast is not None
    noisy = logging.getLogger("csv2sr.conversion.fastpath")

    def failing(*_: Any) -> bytes:
        noisy.warning("no fast template for a document shape")
        raise ValueError("refused")

    worker.fast.encode_bytes = failing  # type: ignore[method-assign]
    with caplog.at_level(logging.DEBUG):
        worker.warm(first)
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert any("no warm-up" in r.getMessage() for r in caplog.records)
        noisy.warning("after")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "after"]
    assert not (tmp_path / "out").exists()  # nothing written
