"""csv2sr.atomic: the one writer of every output file, on real files in tmp_path."""

from __future__ import annotations

import errno
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csv2sr.atomic import (
    AppendLog,
    InsideReader,
    OutputError,
    atomic_open,
    atomic_text,
    is_temporary,
    open_inside,
    remove_inside,
    temp_name,
    write_atomic,
)

_NAMES = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1, max_size=300,
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 255)


@pytest.mark.property
@settings(database=None, deadline=None)
@given(_NAMES)
def test_temporary_names_are_recognised_and_fit_any_file_system(name: str) -> None:
    tmp = temp_name(name)
    assert is_temporary(tmp)
    assert tmp.startswith(".") and "/" not in tmp
    assert len(tmp.encode("utf-8")) <= 255  # NAME_MAX, whatever the target's length
    if not name.startswith("."):
        assert not is_temporary(name)


def test_writes_replace_atomically_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "file.txt"
    write_atomic(target, "first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]  # no temporary left


def test_an_error_in_the_block_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "kept.txt"
    target.write_text("old")
    with pytest.raises(KeyError), atomic_text(target) as handle:
        handle.write("half of the new")
        raise KeyError("the caller failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_the_callers_own_os_error_is_not_blamed_on_the_output(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_open(tmp_path / "t.bin") as handle:
        handle.write(b"x")
        (tmp_path / "missing-input").read_bytes()
    assert list(tmp_path.iterdir()) == []


def test_a_full_device_is_an_output_error_with_the_path() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full is not on this system")
    with pytest.raises(OutputError) as caught:
        write_atomic("/dev/full", b"x" * 100_000)
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == "/dev/full: No space left on device"


def test_a_folder_named_as_the_file_is_a_wrong_path(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as caught:
        write_atomic(tmp_path, b"x")
    assert caught.value.wrong_path
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    with pytest.raises(OutputError) as through:
        write_atomic(blocker / "x.json", b"x")
    assert through.value.wrong_path and str(blocker) in str(through.value)


def test_output_errors_cross_process_pools() -> None:
    error = OutputError("/out/sr", "No space left on device", errno.ENOSPC, inside=True)
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.errno, again.inside) == (str(error), errno.ENOSPC, True)


def test_a_link_named_by_the_user_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    (tmp_path / "link.json").symlink_to(real)
    write_atomic(tmp_path / "link.json", "new")
    assert (tmp_path / "link.json").is_symlink() and real.read_text() == "new"


_SEGMENTS = st.lists(st.sampled_from(["a", "b", "link", "c"]), min_size=1, max_size=4)


@pytest.mark.property
@settings(database=None, deadline=None, max_examples=60)
@given(folders=_SEGMENTS, links=st.sets(st.sampled_from(["a", "b", "link", "c"])))
def test_inside_a_root_no_link_is_ever_written_through(
    tmp_path_factory: pytest.TempPathFactory, folders: list[str], links: set[str]
) -> None:
    """Links planted anywhere on the way: the write fails or stays inside the root."""
    base = tmp_path_factory.mktemp("root")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    here = root
    for depth, name in enumerate(folders):
        if name in links and depth < len(folders):
            if not (here / name).exists():
                (here / name).symlink_to(outside, target_is_directory=True)
            break
        here = here / name
        here.mkdir(exist_ok=True)
    target = root.joinpath(*folders, "file.txt")
    try:
        write_atomic(target, "data", root=root)
    except OutputError as exc:
        assert exc.inside and "symbolic link" in exc.message
    else:
        assert target.read_text() == "data"
    assert list(outside.iterdir()) == [], "nothing written through a link"


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "secret"
    root.mkdir()
    outside.write_text("keep")
    (root / "x.dcm").symlink_to(outside)
    write_atomic(root / "x.dcm", "ours", root=root)
    assert not (root / "x.dcm").is_symlink() and (root / "x.dcm").read_text() == "ours"
    assert outside.read_text() == "keep"


def test_paths_leaving_the_root_are_refused(tmp_path: Path) -> None:
    for bad in ("../x", "a/../../x"):
        with pytest.raises(OutputError):
            write_atomic(tmp_path / "root" / bad, "x", root=tmp_path / "root")
    with pytest.raises(OutputError):
        write_atomic(tmp_path / "elsewhere" / "x", "x", root=tmp_path / "root")
    assert not (tmp_path / "x").exists() and not (tmp_path / "elsewhere").exists()


def test_reading_and_removing_inside_never_follow_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.dcm").write_text("not yours")
    root = tmp_path / "root"
    (root / "sr").mkdir(parents=True)
    (root / "sr" / "P").symlink_to(outside, target_is_directory=True)
    (root / "sr" / "f.dcm").symlink_to(outside / "f.dcm")
    fifo = root / "sr" / "fifo.dcm"
    os.mkfifo(fifo)
    for rel in ("sr/P/f.dcm", "sr/f.dcm", "sr/fifo.dcm", "../outside/f.dcm"):
        with pytest.raises(OSError):
            open_inside(root, rel).close()
    with pytest.raises(OSError):
        remove_inside(root, "sr/P/f.dcm")
    remove_inside(root, "sr/f.dcm")  # the link itself goes
    assert (outside / "f.dcm").read_text() == "not yours"


def test_umask_077_gives_private_files(tmp_path: Path) -> None:
    """The mode is the umask's, as for any program's file (not a fixed 0600 or 0644)."""
    script = (
        "import os, sys; os.umask(0o077); from csv2sr.atomic import write_atomic; "
        "write_atomic(sys.argv[1], b'x')"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "p")], check=True)
    assert stat.S_IMODE((tmp_path / "p").stat().st_mode) == 0o600


_LINES = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"),
                  max_size=20)


@pytest.mark.property
@settings(database=None, deadline=None)
@given(_LINES, st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")))
def test_an_append_log_cuts_a_torn_tail_and_appends_whole_lines(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], torn: bytes
) -> None:
    path = tmp_path_factory.mktemp("log") / "sub" / "log.jsonl"
    path.parent.mkdir()
    path.write_bytes(b"".join(lines) + torn)
    log = AppendLog(path)
    try:
        assert log.open() == b"".join(lines) and log.torn == len(torn)
        assert path.read_bytes() == b"".join(lines)  # cut off before anything is appended
        with pytest.raises(BlockingIOError):
            AppendLog(path).open()  # locked while open
        log.append(b"next\n")
        log.sync()
    finally:
        log.close()
    assert path.read_bytes() == b"".join(lines) + b"next\n"
    assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0


def test_an_empty_append_log_leaves_no_file_and_a_link_is_refused(tmp_path: Path) -> None:
    log = AppendLog(tmp_path / "new" / "log.jsonl")
    assert log.open() == b"" and log.torn == 0
    log.close()
    assert not (tmp_path / "new" / "log.jsonl").exists()
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    (tmp_path / "link.jsonl").symlink_to(victim)
    with pytest.raises(OSError) as refused:
        AppendLog(tmp_path / "link.jsonl").open()
    assert refused.value.errno == errno.ELOOP
    assert victim.read_bytes() == b"precious\n"


def test_inside_reader_reads_regular_files_and_never_through_a_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sr" / "P1").mkdir(parents=True)
    (root / "sr" / "P1" / "a.dcm").write_bytes(b"one")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.dcm").write_bytes(b"secret")
    (root / "sr" / "P2").symlink_to(outside)  # a linked folder
    (root / "sr" / "P1" / "c.dcm").symlink_to(outside / "b.dcm")  # a linked file
    os.mkfifo(root / "sr" / "P1" / "fifo.dcm")
    with InsideReader(root) as reader:
        assert reader("sr/P1/a.dcm") == b"one"
        assert reader("sr/P2/b.dcm") is None
        assert reader("sr/P1/c.dcm") is None
        assert reader("sr/P1/fifo.dcm") is None  # refused at once, never blocks
        assert reader("sr/../outside/b.dcm") is None
        assert reader("sr/P1/missing.dcm") is None
        with pytest.raises(OSError) as link:
            reader.read("sr/P1/c.dcm")
        assert link.value.errno == errno.ELOOP and link.value.filename.endswith("c.dcm")
        with pytest.raises(OSError) as missing:
            reader.read("sr/P1/missing.dcm")
        assert missing.value.errno == errno.ENOENT
    assert reader._folders == {}  # every folder closed
