"""Nothing outside OUTDIR is ever written, followed or removed (docs/reliability.md, Output).

Real conversions on real files: planted manifests that list paths outside OUTDIR (absolute,
``../``, through a linked folder), links and FIFOs inside ``sr/``, ``sr`` and
``manifest.csv`` of the wrong kind, generated patient IDs and too-long names.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csv2sr.conversion.batch import OutputError, convert, manifest_columns
from csv2sr.conversion.outputs import SAFE_NAME_MAX, safe_name
from csv2sr.mapping.load import load_profile
from rowgen import SAMPLE, sample_rows


def _csv2sr(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csv2sr", *args], capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links as their target, not followed) and its content."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = "dir"
    return found


def _outside(tmp_path: Path) -> Path:
    """A folder next to OUTDIR holding files an attacker would like removed."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    for name in ("victim.dcm", "sub/victim.dcm", "order-0001.dcm"):
        (outside / name).write_bytes(b"precious " + name.encode())
    return outside


_PATH_FORMS = st.sampled_from([
    "{abs}/victim.dcm", "{abs}/sub/victim.dcm", "../outside/victim.dcm",
    "sr/../../outside/victim.dcm", "sr/SYN-0001/../../../outside/victim.dcm",
    "linked/victim.dcm", "linked/sub/victim.dcm", "sr/{name}/order-9999.dcm",
    "{abs}/order-0001.dcm", "/{name}.dcm",
])


@pytest.mark.property
@settings(database=None, deadline=None, max_examples=25)
@given(
    forms=st.lists(_PATH_FORMS, min_size=1, max_size=8),
    name=st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True),
)
def test_a_planted_manifest_never_removes_anything_outside(
    tmp_path_factory: pytest.TempPathFactory, forms: list[str], name: str
) -> None:
    base = tmp_path_factory.mktemp("planted")
    outside = _outside(base)
    out = base / "out"
    out.mkdir()
    (out / "linked").symlink_to(outside, target_is_directory=True)
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(manifest_columns(load_profile("ccc2017")))
        for line, form in enumerate(forms, start=2):
            path = form.format(abs=outside, name=name)
            writer.writerow([line, line, f"x{line}", path, "", "", "", "converted", ""])
    before = _snapshot(outside)
    result = convert(SAMPLE, out, jobs=1)
    assert result.converted == 12
    assert _snapshot(outside) == before, "a path read from a file was trusted"
    assert (out / "linked").is_symlink()  # not in sr/: not csv2sr's, left alone


def _converted(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    convert(SAMPLE, out, jobs=1)
    return out


@pytest.mark.parametrize("plant", ["folder-link", "file-link", "dangling", "fifo", "nested"])
def test_links_and_strangers_inside_sr_stop_the_run_untouched(
    tmp_path: Path, plant: str
) -> None:
    outside = _outside(tmp_path)
    out = _converted(tmp_path)
    patient = out / "sr" / "SYN-0001"
    if plant == "folder-link":
        for child in patient.iterdir():
            child.unlink()
        patient.rmdir()
        patient.symlink_to(outside, target_is_directory=True)
    elif plant == "file-link":
        (patient / "order-0001.dcm").unlink()
        (patient / "order-0001.dcm").symlink_to(outside / "order-0001.dcm")
    elif plant == "dangling":
        (out / "sr" / "GONE").symlink_to(tmp_path / "nowhere")
    elif plant == "fifo":
        os.mkfifo(patient / "order-0099.dcm")
    else:
        (patient / "deeper").mkdir()
    before_out, before_outside = _snapshot(out), _snapshot(outside)
    done = _csv2sr("convert", str(SAMPLE), "-o", str(out), "--jobs", "1", "--quiet")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "entries csv2sr did not write" in done.stderr and str(out / "sr") in done.stderr
    assert _snapshot(outside) == before_outside
    assert _snapshot(out) == before_out, "a refused run writes nothing"


@pytest.mark.parametrize(("name", "kind"), [
    ("sr", "file"), ("sr", "link"), ("sr", "fifo"),
    ("manifest.csv", "folder"), ("manifest.csv", "link"), ("manifest.csv", "fifo"),
    ("rejected.csv", "fifo"), (".csv2sr.lock", "link"),
])
def test_own_names_of_the_wrong_kind_are_a_clear_error(
    tmp_path: Path, name: str, kind: str
) -> None:
    outside = _outside(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    path = out / name
    if kind == "file":
        path.write_text("not a folder")
    elif kind == "link":
        path.symlink_to(outside / "victim.dcm" if name != "sr" else outside)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    before = _snapshot(outside)
    done = _csv2sr("convert", str(SAMPLE), "-o", str(out), "--jobs", "1", "--quiet",
                   timeout=60)  # a FIFO must not hang the run
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert str(path) in done.stderr.replace("\n", "")
    assert _snapshot(outside) == before
    assert not (out / "sr").is_dir() or name == "sr"


@pytest.mark.property
@settings(database=None, deadline=None, max_examples=300)
@given(st.lists(st.text(max_size=200), min_size=2, max_size=6, unique=True))
def test_safe_names_stay_in_their_folder_and_never_collide(values: list[str]) -> None:
    names = [safe_name(v) for v in values]
    assert len(set(names)) == len(names), "two IDs share a folder"
    for value, name in zip(values, names, strict=True):
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", name), name
        assert len(name.encode()) <= SAFE_NAME_MAX
        assert not name.endswith(".")
        assert name.split(".", 1)[0].upper() not in _RESERVED
        assert (name == value) == bool(
            re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", value) and len(value) <= SAFE_NAME_MAX
            and not value.endswith(".") and value.split(".", 1)[0].upper() not in _RESERVED
        )


_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{k}{n}" for k in ("COM", "LPT") for n in range(10))}


@pytest.mark.property
@settings(database=None, deadline=None, max_examples=100)
@given(st.sampled_from(sorted(_RESERVED)), st.sampled_from(["", ".txt", ".tar.gz", ".dcm"]),
       st.lists(st.booleans(), min_size=4, max_size=4))
def test_windows_device_names_are_never_folder_names(
    device: str, extension: str, upper: list[bool]
) -> None:
    mixed = "".join(c.upper() if u else c.lower() for c, u in zip(device, upper * 2,
                                                                   strict=False))
    name = safe_name(mixed + extension)
    assert name.split(".", 1)[0].upper() not in _RESERVED
    assert re.fullmatch(r"_.+-[0-9a-f]{8}", name), name


def test_a_long_patient_id_gives_a_bounded_folder(tmp_path: Path) -> None:
    fields, rows = sample_rows()
    rows = rows[:2]
    rows[0]["patientID"] = "P" * 64  # LO: 64 characters
    rows[1]["patientID"] = "é" * 64  # 128 bytes of UTF-8, all escaped
    table = tmp_path / "long.csv"
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)
    result = convert(table, tmp_path / "out", jobs=1)
    folders = [p.name for p in (tmp_path / "out" / "sr").iterdir()]
    assert len(folders) == result.converted
    assert all(len(f.encode()) <= SAFE_NAME_MAX for f in folders)


def test_a_file_name_too_long_is_a_rejected_row_not_a_traceback(tmp_path: Path) -> None:
    """An order of 300 digits: whoever refuses it (the row checks or the file system),
    the row is rejected with a one-line reason naming the column, and the rest goes on."""
    fields, rows = sample_rows()
    rows[3]["order"] = "9" * 300
    table = tmp_path / "orders.csv"
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)
    done = _csv2sr("convert", str(table), "-o", str(tmp_path / "out"), "--jobs", "1")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    problem = [line for line in done.stderr.splitlines() if f"{table}:5:" in line]
    assert len(problem) == 1 and "order" in problem[0]
    assert len(list((tmp_path / "out" / "sr").rglob("*.dcm"))) == 11


def test_a_name_the_file_system_refuses_is_a_rejected_row(tmp_path: Path) -> None:
    """The writer's own rule, below any row check: ENAMETOOLONG from the system."""
    from csv2sr.conversion.batch import _Worker  # noqa: PLC0415
    from csv2sr.conversion.checks import Record, RowError, read_rows  # noqa: PLC0415
    from csv2sr.dicom.codes import CodeMode  # noqa: PLC0415
    from csv2sr.mapping.load import load_profile  # noqa: PLC0415

    profile = load_profile("ccc2017")
    from csv2sr.conversion.document import as_document  # noqa: PLC0415

    row = next(r for r in read_rows(SAMPLE, profile) if isinstance(r, Record))
    worker = _Worker(SAMPLE, tmp_path, profile, CodeMode.SCT, None, True)
    document = as_document(row, profile)
    long_name = dataclasses.replace(document, relpath="sr/P/" + "o" * 300 + ".dcm")
    refused = worker.write(long_name, b"data")
    assert refused is not None and len(refused) == 1
    (error,) = refused
    assert isinstance(error, RowError) and error.line == row.line
    # the column the file name is made from (document.file_name's first)
    assert error.problems[0].column == "patientID" and "too long" in error.reason
    with pytest.raises(OutputError):  # any other failure of the system stops the run
        worker.write(dataclasses.replace(document, relpath="sr/../../x.dcm"), b"data")
    assert not (tmp_path.parent / "x.dcm").exists()
