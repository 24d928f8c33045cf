"""``convert --cache``: a rerun builds only the documents that changed, and writes the bytes
a clean run writes (:mod:`csv2sr.conversion.memo`).

How the tests know a document was not built again: they count the calls of the encoder in
this process (``jobs=1``, or a table too small for workers).  Everything else is the real
conversion into real folders, compared file by file with a run without the cache.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from csv2sr.conversion import batch
from csv2sr.conversion.batch import convert
from csv2sr.conversion.checks import Record, read_rows
from csv2sr.conversion.document import as_document
from csv2sr.conversion.fastpath import FastEncoder, shape_digest
from csv2sr.dicom.codes import CodeMode
from csv2sr.mapping.load import load_profile

SAMPLE = FIXTURES / "ccc2017-sample.csv"


def _tree(out: Path) -> dict[str, bytes]:
    """Every file a conversion writes (the SRs, manifest.csv, rejected.csv), by path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and "cache" not in p.relative_to(out).parts
            and not p.name.startswith(".")}


def _mtimes(out: Path) -> dict[str, int]:
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns
            for p in (out / "sr").rglob("*.dcm")}


class _Calls:
    """Counts the calls in this process of a :class:`FastEncoder` method:
    ``encode_bytes`` (the documents built) or ``_highdicom`` (those highdicom builds)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, method: str = "encode_bytes") -> None:
        self.count = 0
        original = getattr(FastEncoder, method)

        def counted(encoder: FastEncoder, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(encoder, *args, **kwargs)

        monkeypatch.setattr(FastEncoder, method, counted)


def _rows() -> tuple[list[str], list[list[str]]]:
    with SAMPLE.open(newline="") as handle:
        header, *rows = csv.reader(handle)
    return header, rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    path.write_text(buffer.getvalue())
    return path


def _one_changed(tmp_path: Path, index: int = 3) -> tuple[Path, str]:
    """The sample with row ``index``'s length one more; and that row's SR name."""
    header, rows = _rows()
    column = header.index("length")
    rows[index][column] = str(float(rows[index][column]) + 1)
    return (_write(tmp_path / "changed.csv", header, rows),
            f"order-{int(rows[index][header.index('order')]):04d}.dcm")


def _entries(cache: Path) -> dict[str, Any]:
    entries: dict[str, Any] = json.loads(cache.read_text())["entries"]
    return entries


def _sr_entries(cache: Path) -> list[str]:
    return [name for name in _entries(cache) if not name.endswith(" (templates)")]


def _templates(cache: Path) -> dict[str, Any]:
    return {name: value for name, value in _entries(cache).items()
            if name.endswith(" (templates)")}


def _sample_shapes() -> list[str]:
    """The shape digest of each row of the sample (all of them have a shape)."""
    encoder = FastEncoder(load_profile("ccc2017"), CodeMode.SCT)
    shapes = [encoder.shape(as_document(r, encoder.spec))
              for r in read_rows(SAMPLE, encoder.spec) if isinstance(r, Record)]
    return [shape_digest(shape) for shape in shapes if shape is not None]


def _rerun_without_highdicom(out: Path, cache: Path, index: int, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> _Calls:
    """Rerun into ``out`` with row ``index`` changed: no SR built with highdicom, and the
    files of a clean run."""
    changed, _ = _one_changed(tmp_path, index)
    highdicom = _Calls(monkeypatch, "_highdicom")
    convert(changed, out, jobs=1, cache=cache)
    assert highdicom.count == 0
    clean = tmp_path / "clean"
    convert(changed, clean, jobs=1)
    assert _tree(out) == _tree(clean)
    return highdicom


@pytest.fixture
def cached(tmp_path: Path) -> tuple[Path, Path]:
    """The sample converted with a cache: (OUTDIR, cache file)."""
    out, cache = tmp_path / "out", tmp_path / "out" / "cache" / "convert.json"
    assert convert(SAMPLE, out, jobs=1, cache=cache).rejected == 0
    assert cache.is_file()
    return out, cache


def test_a_rerun_builds_only_the_row_that_changed(
    cached: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, cache = cached
    changed, name = _one_changed(tmp_path)
    before = _mtimes(out)
    builds = _Calls(monkeypatch)
    result = convert(changed, out, jobs=1, cache=cache)
    assert builds.count == 1
    assert result.converted == result.documents == len(before)
    after = _mtimes(out)
    moved = [rel for rel in before if after[rel] != before[rel]]
    assert len(moved) == 1 and moved[0].endswith(name)
    clean = tmp_path / "clean"
    convert(changed, clean, jobs=1)
    assert _tree(out) == _tree(clean)


def test_the_cache_keeps_a_template_of_every_shape_and_a_rerun_needs_no_highdicom(
    cached: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run proves a template for every shape, also those of one document; the
    rerun renders the changed row from the stored template without building anything with
    highdicom, and writes what a clean run writes.  A one-row table into another folder,
    with the same cache, needs no highdicom either."""
    out, cache = cached
    stored = _templates(cache)
    assert {name.split(" ")[0] for name in stored} == set(_sample_shapes())
    highdicom = _rerun_without_highdicom(out, cache, 3, tmp_path, monkeypatch)
    assert _templates(cache) == stored
    header, rows = _rows()
    one = _write(tmp_path / "one.csv", header, rows[3:4])
    highdicom.count = 0
    convert(one, tmp_path / "one", jobs=1, cache=cache)
    assert highdicom.count == 0
    assert (tmp_path / "one" / "sr").is_dir()
    convert(one, tmp_path / "one-clean", jobs=1)
    assert _tree(tmp_path / "one") == _tree(tmp_path / "one-clean")


@pytest.mark.parametrize("damage", ["bytes", "sha256", "not base64", "not a dict"])
def test_a_template_not_as_recorded_is_dropped(
    cached: tuple[Path, Path], tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, cache = cached
    document = json.loads(cache.read_text())
    names = sorted(_templates(cache))
    value = document["entries"][names[0]]
    if damage == "bytes":
        data = base64.b64decode(value["base64"])
        value["base64"] = base64.b64encode(data.replace(b"ZZ", b"YY", 1)).decode()
    elif damage == "sha256":
        value["sha256"] = "0" * 64
    elif damage == "not base64":
        value["base64"] = "%%%"
    else:
        document["entries"][names[0]] = "text"
    cache.write_text(json.dumps(document))
    header, rows = _rows()  # every row changed: every shape is needed
    column = header.index("length")
    for row in rows:
        row[column] = str(float(row[column]) + 1)
    changed = _write(tmp_path / "all.csv", header, rows)
    highdicom = _Calls(monkeypatch, "_highdicom")
    convert(changed, out, jobs=1, cache=cache)
    assert highdicom.count >= 1  # the dropped shape is built again
    clean = tmp_path / "clean"
    convert(changed, clean, jobs=1)
    assert _tree(out) == _tree(clean)
    assert sorted(_templates(cache)) == names  # and proved again, as it was


def test_an_unchanged_table_builds_nothing(
    cached: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, cache = cached
    before = _tree(out)
    builds = _Calls(monkeypatch)
    assert convert(SAMPLE, out, jobs=1, cache=cache).converted == 12
    assert builds.count == 0
    assert _tree(out) == before


@pytest.mark.parametrize("damage", ["changed", "removed", "truncated"])
def test_an_sr_that_is_no_longer_as_written_is_built_again(
    cached: tuple[Path, Path], damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, cache = cached
    before = _tree(out)
    sr = sorted((out / "sr").rglob("*.dcm"))[5]
    if damage == "changed":
        sr.write_bytes(sr.read_bytes().replace(b"fixture", b"FIXTURE"))
    elif damage == "removed":
        sr.unlink()
    else:
        sr.write_bytes(sr.read_bytes()[:-10])
    builds = _Calls(monkeypatch)
    convert(SAMPLE, out, jobs=1, cache=cache)
    assert builds.count == 1
    assert _tree(out) == before


@pytest.mark.parametrize("content", ["", "not json", '{"key": 1}', "[]"])
def test_a_broken_cache_is_ignored_and_replaced(
    cached: tuple[Path, Path], content: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, cache = cached
    before = _tree(out)
    cache.write_text(content)
    builds = _Calls(monkeypatch)
    convert(SAMPLE, out, jobs=1, cache=cache)
    assert builds.count == 12
    assert _tree(out) == before
    assert len(_sr_entries(cache)) == 12


@pytest.mark.parametrize("options", [{"codes": "srt"}, {"ohif": True}, {"fast": False}])
def test_a_cache_of_other_options_is_not_used(
    cached: tuple[Path, Path], tmp_path: Path, options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, cache = cached
    count = _Calls(monkeypatch) if options != {"fast": False} else None
    convert(SAMPLE, out, jobs=1, cache=cache, **options)
    if count is not None:
        assert count.count == 12
    clean = tmp_path / "clean"
    convert(SAMPLE, clean, jobs=1, **options)
    assert _tree(out) == _tree(clean)


def test_another_profile_does_not_share_the_cache(
    cached: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, cache = cached
    text = (Path(batch.__file__).parent.parent / "mapping" / "profiles" /
            "ccc2017.toml").read_text()
    assert 'title = "' in text
    other = tmp_path / "other.toml"
    other.write_text(text.replace('title = "', 'title = "Another ', 1))
    builds = _Calls(monkeypatch)
    convert(SAMPLE, out, jobs=1, cache=cache, profile=other)
    assert builds.count == 12


def test_workers_start_only_when_enough_is_left_to_build(
    cached: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    pool_starts: list[int],
) -> None:
    """Few documents to build: this process builds them, even with ``jobs=2``; more than
    INLINE_ROWS (lowered to 3 here): the worker pool, with the hits passed through it in
    order.  Both write what a clean run writes."""
    out, cache = cached
    pools = pool_starts
    monkeypatch.setattr(batch, "INLINE_ROWS", 3)
    header, rows = _rows()
    column = header.index("length")
    for count, expected in ((2, []), (4, [2])):
        for row in rows[:count]:
            row[column] = str(float(row[column]) + 1)
        changed = _write(tmp_path / f"changed-{count}.csv", header, rows)
        pools.clear()
        convert(changed, out, jobs=2, cache=cache)
        assert pools == expected
        clean = tmp_path / f"clean-{count}"
        convert(changed, clean, jobs=1)
        assert _tree(out) == _tree(clean)


_EDITS = st.lists(
    st.tuples(st.integers(0, 11), st.sampled_from(["length", "annotator", "bad", "drop"]),
              st.integers(1, 999)),
    max_size=6,
)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=_EDITS)
def test_a_cached_rerun_writes_what_a_clean_run_writes(
    edits: list[tuple[int, str, int]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """For any edits of the table (values changed, rows made invalid or dropped), a rerun
    into the last run's OUTDIR with its cache gives the files of a clean conversion."""
    root = tmp_path_factory.mktemp("edits")
    out, cache = root / "out", root / "out" / "cache" / "convert.json"
    convert(SAMPLE, out, jobs=1, cache=cache)
    header, rows = _rows()
    dropped: set[int] = set()
    for index, edit, number in edits:
        if edit == "length":
            rows[index][header.index("length")] = f"{number / 7:.6f}"
        elif edit == "annotator":
            rows[index][header.index("annotator")] = f"reader_{number}"
        elif edit == "bad":
            rows[index][header.index("length")] = "not a number"
        else:
            dropped.add(index)
    kept = [row for i, row in enumerate(rows) if i not in dropped]
    changed = _write(root / "changed.csv", header, kept)
    convert(changed, out, jobs=1, cache=cache)
    clean = root / "clean"
    convert(changed, clean, jobs=1)
    assert _tree(out) == _tree(clean)
    shutil.rmtree(root)


def test_with_images_a_changed_header_rebuilds_the_srs_of_its_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image headers an SR copies are part of its document's digest: the same rows with
    one image's Patient's Name changed rebuild the SRs on that image, and only those."""
    import pydicom  # noqa: PLC0415

    from csv2sr.images.index import ImageIndex  # noqa: PLC0415
    from imagegen import write_fixture  # noqa: PLC0415

    fixture = write_fixture(tmp_path / "synthetic")
    out, cache = tmp_path / "out", tmp_path / "out" / "cache" / "convert.json"
    first = convert(fixture.good_csv, out, jobs=1, cache=cache,
                    images=ImageIndex.from_folder(fixture.image_dir))
    assert first.rejected == 0 and first.documents > 1
    builds = _Calls(monkeypatch)
    convert(fixture.good_csv, out, jobs=1, cache=cache,
            images=ImageIndex.from_folder(fixture.image_dir))
    assert builds.count == 0
    before = _tree(out)
    image_column = "instanceUID"
    with fixture.good_csv.open(newline="") as handle:
        on_image = [row for row in csv.DictReader(handle)]
    target = on_image[0][image_column]
    expected = sum(1 for row in on_image if row[image_column] == target)
    source = next(p for p in fixture.image_files
                  if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == target)
    ds = pydicom.dcmread(source)
    ds.PatientName = "Changed^Name"
    ds.save_as(source)
    index = ImageIndex.from_folder(fixture.image_dir)
    convert(fixture.good_csv, out, jobs=1, cache=cache, images=index)
    assert builds.count == expected
    after = _tree(out)
    changed = sorted(rel for rel in after if after[rel] != before.get(rel))
    assert len(changed) == expected  # the SRs on that image: the name is copied in
    assert all(b"Changed^Name" in after[rel] for rel in changed)
    clean = tmp_path / "clean"
    convert(fixture.good_csv, clean, jobs=1, images=ImageIndex.from_folder(fixture.image_dir))
    assert _tree(out) == _tree(clean)


def test_templates_the_workers_prove_come_back_to_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool_starts: list[int]
) -> None:
    """With a worker pool the templates are proved in the workers: they come back with
    the results, and a rerun in this process renders from them without highdicom."""
    monkeypatch.setattr(batch, "INLINE_ROWS", 3)
    out, cache = tmp_path / "out", tmp_path / "out" / "cache" / "convert.json"
    convert(SAMPLE, out, jobs=2, cache=cache)
    assert pool_starts == [2]
    kept = [name.split(" ")[0] for name in _templates(cache)]
    assert kept
    index = next(i for i, shape in enumerate(_sample_shapes()) if shape in kept)
    _rerun_without_highdicom(out, cache, index, tmp_path, monkeypatch)
