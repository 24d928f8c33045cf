"""The fast path (conversion/fastpath.py) gives highdicom's bytes for every document shape
of every test profile, on seeded generated tables (many rows, edge values): each shape's
template is built once, proven on its first document, then rendered for the others, and
every file is compared with the reference builder's.  (The real CSV, every row:
tests/test_fastpath.py, marked slow.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.conversion.document import dataset_bytes
from csv2sr.conversion.fastpath import FastEncoder
from csv2sr.conversion.group import documents
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile
from csv2sr.mapping.record import Document
from profilegen import TEST_PROFILES, generate_rows, profile_path, write_table

ROWS = 80


CASES = [
    *((name, CodeMode.SCT) for name in (*TEST_PROFILES, "ccc2017")),
    # srt only where the profile's SNOMED codes have SNOMED-RT forms
    *((name, CodeMode.SRT) for name in ("ccc2017", "ccc2018")),
]


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_every_shape_renders_highdicoms_bytes(name: str, mode: CodeMode,
                                              tmp_path: Path) -> None:
    spec = load_profile(name if name == "ccc2017" else profile_path(name))
    rows = generate_rows(spec, ROWS, seed=len(name) * 7919)
    table = write_table(tmp_path / "t.csv", spec, rows)
    items = list(read_rows(table, spec))
    assert all(isinstance(i, Record) for i in items)
    docs = [d for d in documents(items, spec, table) if isinstance(d, Document)]
    fast = FastEncoder(spec, mode)
    mismatched = [d.relpath for d in docs
                  if fast.encode_bytes(d) != dataset_bytes(encode(d, spec, mode))]
    assert mismatched == []
    # every shape is covered by a template or, for documents of several groups, composed
    # from pieces (conversion/compose.py, tests/test_compose.py): none left to highdicom;
    # and templates were rendered for documents other than the one they were proven on
    composed = {s for s, plan in fast.composer.plans.items() if plan is not None}
    assert all(t is not None for t in fast.templates.values())
    # (a shape seen once stays highdicom's: pending, test_a_shape_seen_once...)
    covered = {*fast.templates, *composed, *fast.pending}
    assert all(fast.shape(d) in covered for d in docs)
    assert 0 < len(fast.templates) + len(fast.composer.splits) < len(docs)


def test_a_shape_seen_once_builds_no_template(tmp_path: Path) -> None:
    """The first document of a shape is highdicom's alone (kept, not templated); the
    second makes the template, proven on the first, and renders highdicom's bytes."""
    spec = load_profile("ccc2017")
    table = write_table(tmp_path / "t.csv", spec, generate_rows(spec, 30, seed=3))
    docs = [d for d in documents(list(read_rows(table, spec)), spec, table)
            if isinstance(d, Document)]
    fast = FastEncoder(spec, CodeMode.SCT)
    shapes = [fast.shape(d) for d in docs]
    first = docs[0]
    again = next(d for d, s in zip(docs[1:], shapes[1:], strict=True) if s == shapes[0])
    assert fast.encode_bytes(first) == dataset_bytes(encode(first, spec, CodeMode.SCT))
    assert fast.templates == {} and list(fast.pending) == [shapes[0]]
    assert fast.encode_bytes(again) == dataset_bytes(encode(again, spec, CodeMode.SCT))
    assert fast.templates[shapes[0]] is not None and fast.pending == {}
