"""The parts of csv2sr.publish that need no server: retries and Retry-After, credentials,
destination parsing and journal names, batches, status codes, the STOW-RS body and answer,
the plan (file headers, duplicates, the release folder).  Generated inputs are seeded."""

from __future__ import annotations

import email.parser
import email.policy
import random
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pydicom
import pytest

from csv2sr.publish import status
from csv2sr.publish.auth import load_credentials
from csv2sr.publish.destination import (
    DicomwebDestination,
    DimseDestination,
    check_aet,
    parse_host_port,
    parse_url,
)
from csv2sr.publish.dicomweb import (
    DicomwebTarget,
    multipart_body,
    outcomes_from_answer,
    parse_answer,
)
from csv2sr.publish.dimse import DimseTarget
from csv2sr.publish.model import (
    DestinationError,
    Item,
    PublishUsageError,
    Status,
    TransientError,
)
from csv2sr.publish.plan import find_release_root, make_plan, read_item
from csv2sr.publish.retry import RetryPolicy, StoppedError, parse_retry_after
from csv2sr.publish.run import batches
from publishing import convert_sample, without_study_uid

# -- retries --------------------------------------------------------------------------


def test_retry_after_seconds_dates_and_garbage() -> None:
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True),
                             now=now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True),
                             now=now) == 0.0
    for junk in (None, "", "soon", "-3", "1.5e9x"):
        assert parse_retry_after(junk) is None


def test_backoff_doubles_with_jitter_and_stays_bounded() -> None:
    policy = RetryPolicy(attempts=12, base=0.5, cap=30.0)
    random.seed(5)
    for retry in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (retry - 1))
        for _ in range(50):
            assert ceiling / 2 <= policy.delay(retry) <= ceiling
    assert policy.delay(3, retry_after=4.0) == 4.0
    assert policy.delay(3, retry_after=3600.0) == 30.0  # a server cannot park us for an hour


def test_call_retries_transient_faults_then_gives_up() -> None:
    policy = RetryPolicy(attempts=3, base=0.001, cap=0.01)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("HTTP 503", retry_after=0.0)
        return "ok"

    assert policy.call(flaky, what="STOW", source="dest") == "ok" and len(calls) == 3

    def down() -> str:
        raise TransientError("connection refused")

    with pytest.raises(DestinationError, match=r"^dest: STOW: connection refused \(gave up "
                                               r"after 3 attempts\)$"):
        policy.call(down, what="STOW", source="dest")


def test_a_stopping_run_does_not_wait_out_the_backoff() -> None:
    policy = RetryPolicy(attempts=3, base=60.0, cap=60.0)
    threading.Timer(0.2, policy.stop.set).start()
    started = time.monotonic()
    with pytest.raises(StoppedError):
        policy.call(lambda: (_ for _ in ()).throw(TransientError("x")), what="w", source="s")
    assert time.monotonic() - started < 30  # woke on stop, not after the 30-60 s backoff


# -- credentials ----------------------------------------------------------------------


def test_credentials_from_env_or_file_hide_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_TOKEN", "  tok-123  \n")
    token = load_credentials(token_env="T_TOKEN")
    assert token is not None and token.header() == "Bearer tok-123"
    assert "tok-123" not in repr(token) + str(token) and str(token) == (
        "bearer credentials from $T_TOKEN")
    secret = tmp_path / "basic"
    secret.write_text("alice:pa:ss\nignored second line\n", encoding="utf-8")
    basic = load_credentials(basic_file=secret)
    assert basic is not None and basic.header() == "Basic YWxpY2U6cGE6c3M="  # alice:pa:ss
    assert repr(basic.requests_auth()) == "<Authorization hidden>"
    assert load_credentials() is None


def test_credential_mistakes_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMPTY", "  ")
    monkeypatch.setenv("NOCOLON", "alice")
    cases = [
        ({"token_env": "UNSET_ANYWHERE_42"}, "$UNSET_ANYWHERE_42: environment variable not set"),
        ({"token_env": "EMPTY"}, "$EMPTY: the credentials are empty"),
        ({"basic_env": "NOCOLON"}, "must be written user:password"),
        ({"token_file": tmp_path / "none"}, "cannot read the credentials"),
        ({"token_env": "EMPTY", "basic_env": "NOCOLON"}, "give one of"),
    ]
    for kwargs, message in cases:
        with pytest.raises(PublishUsageError, match=message.replace("$", r"\$")):
            load_credentials(**kwargs)  # type: ignore[arg-type]


# -- destinations ---------------------------------------------------------------------


def test_urls_are_checked_and_never_carry_credentials() -> None:
    assert parse_url("https://pacs.example/dicom-web/") == "https://pacs.example/dicom-web"
    assert parse_url("http://127.0.0.1:8042/dicom-web") == "http://127.0.0.1:8042/dicom-web"
    for bad, message in [("ftp://x/y", "http:// or https://"), ("http:///p", "with a host"),
                         ("http://x:99999/p", "not a valid URL"),
                         ("http://x/p?token=1", r"without \?query"),
                         ("https://u:hunter2@x/p", "credentials in the URL are refused")]:
        with pytest.raises(PublishUsageError, match=message) as raised:
            parse_url(bad)
        assert "hunter2" not in str(raised.value)


def test_host_port_and_ae_titles() -> None:
    assert parse_host_port("pacs:104") == ("pacs", 104)
    assert parse_host_port("[::1]:11112") == ("::1", 11112)
    for bad in ("pacs", ":104", "pacs:0", "pacs:65536", "pacs:x"):
        with pytest.raises(PublishUsageError):
            parse_host_port(bad)
    assert check_aet("--aet", "STORESCP") == "STORESCP"
    for bad in ("", "   ", "A" * 17, "BACK\\SLASH", "TAB\tX"):
        with pytest.raises(PublishUsageError):
            check_aet("--aet", bad)


def test_journal_names_are_one_per_destination_and_safe() -> None:
    def stow(url: str) -> str:
        return DicomwebDestination(DicomwebTarget(parse_url(url))).journal_name()

    assert stow("http://H:80/dicom-web/") == stow("http://h/dicom-web")
    assert stow("http://h/dicom-web") != stow("https://h/dicom-web") != stow("http://h/other")
    assert stow("http://127.0.0.1:8042/dicom-web").startswith("stow-127.0.0.1-8042-")
    dimse = DimseDestination(DimseTarget("pacs", 104, called_aet="MY PACS/1")).journal_name()
    assert dimse.startswith("dimse-MY_PACS_1-pacs-104-") and dimse.endswith(".jsonl")
    assert dimse != DimseDestination(DimseTarget("pacs", 104, called_aet="OTHER")).journal_name()


# -- batches and status codes ---------------------------------------------------------


def _item(n: int, size: int) -> Item:
    return Item(path=Path(f"{n}.dcm"), key=f"{n}.dcm", size=size, sha256="0" * 64,
                sop_instance_uid=f"2.25.{n}", sop_class_uid="1.2", transfer_syntax_uid="1.2.3")


def test_batches_keep_order_and_bounds() -> None:
    rng = random.Random(9)
    for _ in range(200):
        items = [_item(n, rng.randint(1, 5000)) for n in range(rng.randint(0, 60))]
        max_files, max_bytes = rng.randint(1, 12), rng.randint(1, 20000)
        groups = list(batches(items, max_files, max_bytes))
        assert [i for g in groups for i in g] == items
        for group in groups:
            assert 1 <= len(group) <= max_files
            assert len(group) == 1 or sum(i.size for i in group) <= max_bytes


def test_status_codes_are_described_by_the_standard() -> None:
    assert status.describe(0xA700) == "0xA700 (Refused: out of resources)"
    assert status.describe(0xA9FE) == "0xA9FE (Error: data set does not match SOP Class)"
    assert status.describe(0xC122) == "0xC122 (Referenced Transfer Syntax not supported)"
    assert status.describe(0xC000) == "0xC000 (Error: cannot understand)"
    assert status.describe(0x0122) == "0x0122 (SOP Class not supported)"
    assert status.describe(0xB000) == "0xB000 (Warning: coercion of data elements)"
    assert [status.is_failure(c) for c in (0x0000, 0xB006, 0x0111, 0x0110, 0xA700)] == [
        False, False, False, True, True]


# -- STOW-RS body and answer ----------------------------------------------------------


def test_multipart_body_carries_each_file_byte_for_byte() -> None:
    rng = random.Random(11)
    for _ in range(30):
        parts = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
                 + rng.choice([b"", b"\r\n", b"--", b"\r\n--x--\r\n"])
                 for _ in range(rng.randint(1, 5))]
        body, content_type = multipart_body(parts)
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        got = [p.get_payload(decode=True) for p in message.iter_parts()]
        assert got == parts
        assert all(p.get_content_type() == "application/dicom" for p in message.iter_parts())


def _uid(value: str) -> dict[str, object]:
    return {"vr": "UI", "Value": [value]}


def test_the_answer_decides_per_instance() -> None:
    items = [_item(n, 10) for n in range(5)]
    answer = {
        "00081199": {"vr": "SQ", "Value": [
            {"00081155": _uid("2.25.0")},
            {"00081155": _uid("2.25.1"), "00081196": {"vr": "US", "Value": [0xB000]}},
            {"00081155": _uid("9.9.9")},  # not ours: ignored
        ]},
        "00081198": {"vr": "SQ", "Value": [
            {"00081155": _uid("2.25.2"), "00081197": {"vr": "US", "Value": [0xC000]}},
            {"00081155": _uid("2.25.3"), "00081197": {"vr": "US", "Value": [0x0111]}},
        ]},
    }
    outcomes, unnamed = outcomes_from_answer(items, answer, "HTTP 202 Accepted")
    by_key = {o.key: o for o in outcomes}
    assert [i.key for i in unnamed] == ["4.dcm"]
    assert by_key["0.dcm"].status is Status.SENT and by_key["0.dcm"].reason == ""
    assert by_key["1.dcm"].status is Status.SENT
    assert by_key["1.dcm"].reason == ("stored with Warning Reason 0xB000 (Warning: coercion "
                                      "of data elements)")
    assert by_key["2.dcm"].status is Status.FAILED and by_key["2.dcm"].reason == (
        "refused by the server: HTTP 202 Accepted, Failure Reason 0xC000 (Error: cannot "
        "understand)")
    assert by_key["3.dcm"].status is Status.ALREADY
    assert outcomes_from_answer(items, None, "HTTP 400")[1] == items


# -- the plan -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_sample(tmp_path_factory.mktemp("plan") / "rel")


def test_plan_reads_uids_and_finds_the_release(converted: Path) -> None:
    assert find_release_root([converted / "sr"]) == converted.resolve()
    assert find_release_root([converted]) == converted.resolve()
    one = next((converted / "sr").rglob("*.dcm"))
    assert find_release_root([one]) == converted.resolve()
    assert find_release_root([converted.parent]) is None
    plan = make_plan([converted / "sr"], converted.resolve())
    assert len(plan.items) == 12 and plan.failures == []
    for item in plan.items:
        ds = pydicom.dcmread(item.path)
        assert (item.sop_instance_uid, item.sop_class_uid, item.study_instance_uid,
                item.series_instance_uid, item.transfer_syntax_uid) == (
            ds.SOPInstanceUID, ds.SOPClassUID, ds.StudyInstanceUID, ds.SeriesInstanceUID,
            ds.file_meta.TransferSyntaxUID)
        assert item.key == item.path.relative_to(converted).as_posix()


def test_plan_reports_what_cannot_be_sent(converted: Path, tmp_path: Path) -> None:
    sr = tmp_path / "sr"
    sr.mkdir()
    files = sorted((converted / "sr").rglob("*.dcm"))
    (sr / "a.dcm").write_bytes(files[0].read_bytes())
    (sr / "copy.dcm").write_bytes(files[0].read_bytes())  # the same file twice: sent once
    changed = pydicom.dcmread(files[0])
    changed.SeriesDescription = "other bytes, same UID"
    changed.save_as(sr / "clash.dcm", enforce_file_format=True)
    no_uid = pydicom.dcmread(files[1])
    del no_uid.SOPInstanceUID
    no_uid.save_as(sr / "no-uid.dcm", enforce_file_format=True)
    (sr / "text.dcm").write_text("not DICOM", encoding="utf-8")
    (sr / "README").write_text("passed over: not .dcm, not DICM", encoding="utf-8")
    without_study_uid(files[2], sr / "no-study.dcm")  # sent: the server judges it
    plan = make_plan([sr], None)  # files in name order: a.dcm comes before clash.dcm
    assert [Path(i.key).name for i in plan.items] == ["a.dcm", "no-study.dcm"]
    reasons = {Path(f.key).name: f.reason for f in plan.failures}
    assert reasons == {
        "clash.dcm": f"same SOP Instance UID as {(sr / 'a.dcm').as_posix()} but other bytes: "
                     "not sent",
        "no-uid.dcm": "no SOP Instance UID (0008,0018): not sent",
        "text.dcm": reasons["text.dcm"],
    }
    assert reasons["text.dcm"].startswith("not a readable DICOM file")
    readme = read_item(sr / "README")
    assert not isinstance(readme, Item) and readme.status is Status.FAILED
    (tmp_path / "empty").mkdir()
    with pytest.raises(PublishUsageError, match="no DICOM files"):
        make_plan([tmp_path / "empty"], None)


def test_an_xml_answer_reads_like_the_json_one() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">
  <DicomAttribute tag="00081199" vr="SQ" keyword="ReferencedSOPSequence">
    <Item number="1">
      <DicomAttribute tag="00081155" vr="UI"><Value number="1">2.25.0</Value></DicomAttribute>
    </Item>
  </DicomAttribute>
  <DicomAttribute tag="00081198" vr="SQ" keyword="FailedSOPSequence">
    <Item number="1">
      <DicomAttribute tag="00081155" vr="UI"><Value number="1">2.25.1</Value></DicomAttribute>
      <DicomAttribute tag="00081197" vr="US"><Value number="1">272</Value></DicomAttribute>
    </Item>
  </DicomAttribute>
</NativeDicomModel>"""
    items = [_item(0, 1), _item(1, 1)]
    outcomes, unnamed = outcomes_from_answer(items, parse_answer(xml), "HTTP 202")
    assert unnamed == []
    assert [(o.key, o.status, o.code) for o in outcomes] == [
        ("0.dcm", Status.SENT, "0000"), ("1.dcm", Status.FAILED, "0110")]
    assert parse_answer(b"<html><body>Sign in</body></html>") is None
    assert parse_answer(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>') is None


def test_importing_the_package_loads_no_network_or_dicom_library() -> None:
    code = ("import sys, csv2sr.publish; print(sorted({'pydicom', 'requests', 'urllib3', "
            "'dicomweb_client', 'pynetdicom', 'pandas', 'numpy'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"  # they load when a run needs them
