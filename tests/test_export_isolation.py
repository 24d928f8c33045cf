"""csv2sr export under bad input: what cannot be read is reported, the rest is exported.

Issue 9: a symbolic link loop or a dangling link in a folder aborted the whole export with
a traceback.  Now each is one ``FILE: why`` line on stderr, exit status 1, and every other
file's rows are written.  Mutated real SRs (seeded and hypothesis-generated) never make
the reader raise, and in a batch read by worker processes each file keeps its own rows
and problems.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from csv2sr.cli import app
from csv2sr.conversion.batch import convert
from csv2sr.export import ProblemKind, read_file, write_table
from csv2sr.export.writer import iter_rows
from test_validator_isolation import corrupt_meta, deepen, mutate

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "fixtures" / "ccc2017-sample.csv"
WILD_SR = ROOT.parent / "shared" / "data" / "sr-wild" / "ccc2018_bidirectional_sr.dcm"
runner = CliRunner()


@pytest.fixture(scope="module")
def sample_srs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("export-isolation")
    assert convert(SAMPLE_CSV, out, jobs=1).ok
    return sorted((out / "sr").rglob("*.dcm"))


def test_links_that_cannot_be_read_are_reported_and_the_rest_exported(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "sr"
    (folder / "a").mkdir(parents=True)
    for source in sample_srs[:3]:
        shutil.copy(source, folder / "a" / source.name)
    (folder / "a" / "up").symlink_to("..")
    (folder / "loop.dcm").symlink_to("loop.dcm")
    (folder / "dangling.dcm").symlink_to("gone.dcm")
    os.mkfifo(folder / "pipe.dcm")
    table = tmp_path / "t.csv"
    done = runner.invoke(app, ["export", str(folder), "-o", str(table), "--quiet"])
    assert done.exit_code == 1, done.output
    lines = [" ".join(line.split()) for line in done.stderr.split("error: ") if line.strip()]
    assert sorted(lines) == sorted([
        f"{folder / 'a' / 'up'}: symbolic link loop: leads back to a folder above it, "
        "not followed",
        f"{folder / 'dangling.dcm'}: dangling symbolic link to gone.dcm: nothing to read",
        f"{folder / 'loop.dcm'}: symbolic link loop: not followed",
        f"{folder / 'pipe.dcm'}: a FIFO, not a file: not read",
    ])
    assert len(table.read_text(encoding="utf-8").splitlines()) == 1 + 3


def test_a_dangling_link_named_on_the_command_line_is_a_problem(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    link = tmp_path / "gone.dcm"
    link.symlink_to(tmp_path / "nowhere.dcm")
    table = tmp_path / "t.csv"
    done = runner.invoke(app, ["export", str(link), str(sample_srs[0]), "-o", str(table),
                               "--quiet"])
    assert done.exit_code == 1
    assert "dangling symbolic link" in done.stderr
    assert len(table.read_text(encoding="utf-8").splitlines()) == 2


def test_seeded_mutations_never_raise_in_the_reader(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    sources = [sample_srs[0].read_bytes()]
    if WILD_SR.is_file():
        sources.append(WILD_SR.read_bytes())
    rng = random.Random(99)
    for number in range(600):
        path = tmp_path / f"m{number}.dcm"
        path.write_bytes(mutate(sources[number % len(sources)], rng))
        result = read_file(path)  # raises: the test fails
        assert result.path == str(path)
        assert result.measurements or result.problems


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_mutations_never_raise_in_the_reader(
    data: st.DataObject, sample_srs: list[Path], tmp_path: Path
) -> None:
    source = sample_srs[0].read_bytes()
    buffer = bytearray(source)
    for at, value in data.draw(st.lists(st.tuples(st.integers(0, len(source) - 1),
                                                  st.integers(0, 255)), max_size=6)):
        buffer[at] = value
    cut = data.draw(st.integers(0, len(buffer)))
    path = tmp_path / "h.dcm"
    path.write_bytes(bytes(buffer[:cut]))
    result = read_file(path)
    assert result.measurements or result.problems


def test_batch_in_worker_processes_keeps_each_files_rows(
    sample_srs: list[Path], tmp_path: Path
) -> None:
    """70 files, two processes: a corrupt meta header or a very deep tree (which pydicom
    cannot parse: a named problem) costs that file alone; good files give one row each."""
    folder = tmp_path / "batch"
    folder.mkdir()
    for number in range(70):
        original = sample_srs[number % len(sample_srs)].read_bytes()
        data = (corrupt_meta(original) if number % 10 == 3
                else deepen(original, 5_000) if number % 10 == 7 else original)
        (folder / f"f{number:02d}.dcm").write_bytes(data)
    results = {Path(path).name: (rows, problems)
               for path, rows, problems in iter_rows([folder], jobs=2)}
    assert len(results) == 70
    for name, (rows, problems) in results.items():
        number = int(name[1:3])
        if number % 10 in (3, 7):
            assert rows == [] and [p.kind for p in problems] == [ProblemKind.UNREADABLE]
            words = "(0002,0010)" if number % 10 == 3 else "nested too deeply"
            assert words in problems[0].message, problems
        else:
            assert len(rows) == 1, (name, problems)
            assert not [p for p in problems if p.kind.is_error], problems
    result = write_table([folder], tmp_path / "t.csv", jobs=2)
    assert (result.files, result.rows, result.files_with_errors) == (70, 56, 14)
