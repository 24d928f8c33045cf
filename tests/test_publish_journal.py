"""The publish journal: complete lines only, a torn tail ignored and cut off, one writer
at a time, the last line about an instance decides.  Torn tails are made at every byte
of generated journals, and for real by SIGKILLing a process in the middle of appending."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from csv2sr.publish.journal import Journal, Record, iter_records, parse_journal, read_journal
from csv2sr.publish.model import DestinationError

ALPHABET = "abcXYZ019 ._-/\\\"'{}\n\té✓\u2028"


def _record(rng: random.Random, n: int, event: str = "stored") -> Record:
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
    return Record(event=event, sop_instance_uid=f"2.25.{rng.getrandbits(100)}",
                  sha256=f"{rng.getrandbits(256):064x}", path=f"sr/P{n}/{text}.dcm",
                  run="r" * 12, time="2025-01-01T00:00:00.000Z", code="0000", reason=text)


def test_lines_round_trip_and_every_cut_point_keeps_the_complete_lines() -> None:
    rng = random.Random(14)
    for _ in range(20):
        records = [_record(rng, n, rng.choice(["stored", "verified", "missing"]))
                   for n in range(rng.randint(1, 6))]
        data = b"".join(r.to_line() for r in records)
        assert [Record.from_line(line) for line in data.splitlines()] == records
        ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
        for cut in range(len(data) + 1):
            state = parse_journal(data[:cut])
            complete = sum(1 for end in ends if end <= cut)
            assert state.lines == complete and state.unreadable == 0
            assert state.complete_length == (ends[complete - 1] if complete else 0)
            assert state.torn_bytes == cut - state.complete_length
            expected = {r.sop_instance_uid: r for r in records[:complete]}
            assert state.last == expected


def test_opening_cuts_a_torn_tail_before_appending(tmp_path: Path) -> None:
    rng = random.Random(1)
    path = tmp_path / "publish" / "j.jsonl"
    first, second, third = (_record(rng, n) for n in range(3))
    path.parent.mkdir()
    path.write_bytes(first.to_line() + second.to_line()[:17])  # a power cut mid-line
    with Journal(path, "dest") as journal:
        assert journal.state.torn_bytes == 17 and list(journal.state.last) == [
            first.sop_instance_uid]
        assert path.read_bytes() == first.to_line()
        journal.append([third])
    assert path.read_bytes() == first.to_line() + third.to_line()
    assert list(iter_records(path)) == [first, third]


def test_unreadable_lines_are_skipped_not_fatal(tmp_path: Path) -> None:
    rng = random.Random(2)
    good = [_record(rng, n) for n in range(2)]
    data = (good[0].to_line() + b"\x00" * 40 + b"\n" + b"{not json}\n"
            + json.dumps({"v": 2, "event": "stored"}).encode() + b"\n"
            + json.dumps({"v": 1, "event": "stored"}).encode() + b"\n" + good[1].to_line())
    state = parse_journal(data)
    assert state.unreadable == 4 and state.lines == 2 and state.torn_bytes == 0
    assert set(state.last) == {r.sop_instance_uid for r in good}


def test_the_last_line_decides(tmp_path: Path) -> None:
    rng = random.Random(3)
    stored = _record(rng, 0)
    uid, sha = stored.sop_instance_uid, stored.sha256
    missing = Record(**{**stored.__dict__, "event": "missing"})
    verified = Record(**{**stored.__dict__, "event": "verified"})
    assert parse_journal(stored.to_line()).confirmed(uid, sha) == stored
    assert parse_journal(stored.to_line()).confirmed(uid, "0" * 64) is None  # other bytes
    assert parse_journal(stored.to_line() + missing.to_line()).confirmed(uid, sha) is None
    both = stored.to_line() + missing.to_line() + verified.to_line()
    assert parse_journal(both).confirmed(uid, sha) == verified


def test_one_writer_at_a_time_and_no_empty_journal_left(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path, "dest"), pytest.raises(DestinationError, match="another csv2sr publish"):
        Journal(path, "dest").open()
    assert not path.exists()  # nothing was confirmed
    assert read_journal(path).last == {}


_APPENDER = """
import random, sys
from pathlib import Path
from csv2sr.publish.journal import Journal, Record
rng = random.Random(int(sys.argv[2]))
with Journal(Path(sys.argv[1]), "dest") as journal:
    print("open", flush=True)
    n = 0
    while True:
        batch = [Record(event="stored", sop_instance_uid=f"2.25.{n}.{i}", sha256="0" * 64,
                        path="p" * rng.randint(1, 3000), run="r", time="t")
                 for i in range(rng.randint(1, 40))]
        journal.append(batch)
        n += 1
"""


def test_sigkill_while_appending_never_leaves_an_unreadable_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    rng = random.Random(4)
    lines = 0
    for seed in range(6):
        process = subprocess.Popen([sys.executable, "-c", _APPENDER, str(path), str(seed)],
                                   stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        assert process.stdout is not None and process.stdout.readline() == "open\n"
        time.sleep(rng.uniform(0.05, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        state = read_journal(path)
        assert state.unreadable == 0 and state.lines >= lines
        with Journal(path, "dest") as journal:  # what the next run does first
            assert journal.state.lines == state.lines
        data = path.read_bytes()
        assert data.endswith(b"\n") and parse_journal(data).torn_bytes == 0
        lines = state.lines
    assert lines > 0


def test_a_symlinked_journal_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours\n", encoding="utf-8")
    (tmp_path / "publish").mkdir()
    link = tmp_path / "publish" / "j.jsonl"
    link.symlink_to(outside)
    with pytest.raises(DestinationError, match="cannot open the journal"):
        Journal(link, "dest").open()
    assert outside.read_text(encoding="utf-8") == "not ours\n"
