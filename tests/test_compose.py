"""Documents of several groups, composed from one-group pieces (conversion/compose.py),
give highdicom's bytes: on seeded generated tables of every test profile whose documents
hold several groups, and on documents put together from generated records with every
count of groups from 2 to 14, groups sharing images or not, images in one series or
several, in both code modes and with ``ohif``."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from csv2sr.conversion.build import encode
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.conversion.compose import composable, one_group
from csv2sr.conversion.document import dataset_bytes
from csv2sr.conversion.fastpath import FastEncoder
from csv2sr.conversion.group import documents
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile
from csv2sr.mapping.record import Document
from csv2sr.mapping.spec import Spec
from profilegen import TEST_PROFILES, generate_rows, profile_path, write_table


def _documents(name: str, rows: int, seed: int, tmp_path: Path) -> tuple[Spec, list[Document]]:
    spec = load_profile(profile_path(name))
    table = write_table(tmp_path / f"{name}.csv", spec, generate_rows(spec, rows, seed=seed))
    items = list(read_rows(table, spec))
    assert all(isinstance(i, Record) for i in items)
    return spec, [d for d in documents(items, spec, table) if isinstance(d, Document)]


def _mismatched(fast: FastEncoder, spec: Spec, mode: CodeMode, docs: list[Document],
                ohif: bool = False) -> list[str]:
    return [d.relpath for d in docs
            if fast.encode_bytes(d) != dataset_bytes(encode(d, spec, mode, ohif=ohif))]


COMPOSED = [name for name in TEST_PROFILES if name in ("boxes-fraction", "ellipses")]


@pytest.mark.parametrize("name", COMPOSED)
def test_generated_documents_of_several_groups_are_composed_to_highdicoms_bytes(
        name: str, tmp_path: Path) -> None:
    spec, docs = _documents(name, 150, seed=len(name) * 104729, tmp_path=tmp_path)
    several = [d for d in docs if composable(d)]
    assert len(several) >= 10, "the table gives documents of several groups"
    fast = FastEncoder(spec, CodeMode.SCT)
    assert _mismatched(fast, spec, CodeMode.SCT, docs) == []
    composed = [p for p in fast.composer.plans.values() if p is not None]
    # every document of several groups was composed (none left to whole templates)
    assert len(composed) == len({fast.shape(d) for d in several})
    assert all(fast.shape(d) not in fast.templates for d in several)


def _put_together(records: list[Record], chance: random.Random, base: Document,
                  count: int) -> Document:
    """A document of ``count`` groups from generated records: drawn from one series, or
    from all, so that groups share images or not and images are in one series or not."""
    one_series = chance.random() < 0.5
    pool = records
    if one_series:
        series = chance.choice(records).images[0].series_uid
        pool = [r for r in records if r.images[0].series_uid == series] or records
    picked: list[Record] = []
    while sum(len(r.groups) for r in picked) < count:
        picked.append(chance.choice(pool))
    # the first record's identity (patient, study) for all: as one SR of a study holds them
    first = picked[0]
    same = [dataclasses.replace(r, patient_id=first.patient_id, study_uid=first.study_uid)
            for r in picked]
    return dataclasses.replace(base, records=tuple(same))


@pytest.mark.parametrize(("name", "mode", "ohif"), [
    ("boxes-fraction", CodeMode.SCT, False),
    ("boxes-fraction", CodeMode.SRT, False),
    ("ellipses", CodeMode.SCT, False),
    ("ellipses", CodeMode.SCT, True),
])
def test_every_count_of_groups_and_image_pattern_is_composed_to_highdicoms_bytes(
        name: str, mode: CodeMode, ohif: bool, tmp_path: Path) -> None:
    spec, docs = _documents(name, 60, seed=7, tmp_path=tmp_path)
    records = [r for d in docs for r in d.records]
    chance = random.Random(f"{name}-{mode}-{ohif}")
    made = [_put_together(records, chance, docs[0], count)
            for count in range(2, 15) for _ in range(2)]
    assert all(composable(d) for d in made)
    assert {len({i.series_uid for i in d.images}) > 1 for d in made} == {True, False}
    assert any(len(d.images) < len(d.groups) for d in made), "groups share an image"
    fast = FastEncoder(spec, mode, ohif=ohif)
    assert _mismatched(fast, spec, mode, made, ohif=ohif) == []
    assert fast.templates == {} and fast.pending == {}, "nothing left to whole templates"
    # one split per kind of group (its one-group document's shape), not per document
    kinds = {fast.shape(*one_group(d, g)) for d in made for g in d.groups}
    assert len(fast.composer.splits) == len(kinds) < len(made) // 2
