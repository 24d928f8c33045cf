"""``csv2sr publish --dimse``: C-STORE into a real Orthanc on loopback, verified with C-FIND,
checked independently by QIDO-RS and WADO-RS; one association reused for every file
(counted in Orthanc's own log); a refused file, a wrong AE title, SIGINT and a crashed
server (through a slow TCP relay) resumed by a rerun.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pydicom
import pytest

import csv2sr.publish as library
from netfaults import slow_proxy
from orthanc import AET, OrthancFactory, OrthancServer, free_port
from publishing import (
    dataset_bytes,
    interrupt,
    journal_files,
    publish,
    qido_instances,
    sr_files,
    start_publish,
    stored_counts,
    uid_of,
    wado_bytes,
    wait_for_lines,
    without_study_uid,
)

pytest_plugins = ["publish_fixtures"]  # converted, release, make
pytest.importorskip("pynetdicom", reason="pynetdicom is not installed (extra: test)")


def _associations(server: OrthancServer) -> int:
    """Associations Orthanc accepted, from its own (verbose) log."""
    return len(re.findall(r"Association Received from AET CSV2SR", server.log_text()))


def _dimse(server: OrthancServer, *extra: str) -> tuple[str, ...]:
    return ("--dimse", server.dimse, "--called-aet", AET, *extra)


def _assert_arrived_whole(server: OrthancServer, release: Path) -> None:
    files = sr_files(release)
    assert server.instance_count() == len(files) == 12
    for path in files:
        assert len(qido_instances(server, uid_of(path))) == 1, path
        stored = wado_bytes(server, path)
        # C-STORE carries the data set; the server writes its own File Meta Information
        assert dataset_bytes(stored) == dataset_bytes(path.read_bytes()), path
        assert pydicom.dcmread(path).SOPInstanceUID == uid_of(path)


def test_release_arrives_whole_on_one_association(make: OrthancFactory, release: Path) -> None:
    server = make(verbose=True)
    done = publish(str(release / "sr"), *_dimse(server, "--concurrency", "1", "--verify"))
    assert done.returncode == 0, done.stderr
    assert "sent 12, already there 0, failed 0 of 12" in done.stdout
    assert "(1 association(s))" in done.stdout
    assert "verified 12, missing 0" in done.stdout
    _assert_arrived_whole(server, release)
    assert _associations(server) == 2  # one for the 12 C-STOREs, one for the 12 C-FINDs
    [journal] = journal_files(release)
    assert journal.name.startswith(f"dimse-{AET}-127.0.0.1-")
    assert set(stored_counts(release).values()) == {1}


def test_concurrent_associations_each_reused(make: OrthancFactory, release: Path) -> None:
    server = make(verbose=True)
    done = publish(str(release / "sr"), *_dimse(server, "--concurrency", "3"))
    assert done.returncode == 0, done.stderr
    opened = int(re.search(r"\((\d+) association\(s\)\)", done.stdout).group(1))  # type: ignore[union-attr]
    assert 1 <= opened <= 3 and _associations(server) == opened
    _assert_arrived_whole(server, release)


def test_second_publish_opens_no_association(make: OrthancFactory, release: Path) -> None:
    server = make(verbose=True)
    assert publish(str(release / "sr"), *_dimse(server)).returncode == 0
    before = _associations(server)
    again = publish(str(release / "sr"), *_dimse(server))
    assert again.returncode == 0, again.stderr
    assert "sent 0, already there 12, failed 0 of 12" in again.stdout
    assert _associations(server) == before
    assert server.instance_count() == 12


def test_a_refused_file_fails_alone_with_its_status(make: OrthancFactory, release: Path) -> None:
    server = make()
    without_study_uid(sr_files(release)[2], release / "sr" / "bad.dcm")
    odd = pydicom.dcmread(sr_files(release)[4])
    odd.SOPClassUID = odd.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.10.1394.1"
    odd.SOPInstanceUID = odd.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid(
        entropy_srcs=["odd"])
    odd.save_as(release / "sr" / "odd-class.dcm", enforce_file_format=True)
    done = publish(str(release / "sr"), *_dimse(server, "--concurrency", "1"))
    assert done.returncode == 1
    assert "sent 12, already there 0, failed 2 of 14" in done.stdout
    errors = sorted(line for line in done.stderr.splitlines() if line.startswith("error:"))
    assert errors[0] == ("error: sr/bad.dcm: refused by the server: C-STORE status 0xA700 "
                         "(Refused: out of resources)")
    assert errors[1].startswith("error: sr/odd-class.dcm: not sent: No presentation context "
                                "for '1.2.826.0.1.3680043.10.1394.1' has been accepted")
    assert server.instance_count() == 12


def test_wrong_called_ae_title_is_a_clear_message(make: OrthancFactory, release: Path) -> None:
    server = make()
    done = publish(str(release / "sr"), "--dimse", server.dimse, "--called-aet", "NOT-IT")
    assert done.returncode == 1
    assert ("association rejected (Rejected Permanent, Source: Service User, Called AE title "
            "not recognised); check --aet and --called-aet") in done.stderr
    assert "12 file(s) not sent" in done.stderr and "Traceback" not in done.stderr
    assert journal_files(release) == []  # nothing confirmed, no journal left behind


def test_no_server_is_a_clear_message(release: Path) -> None:
    done = publish(str(release / "sr"), "--dimse", f"127.0.0.1:{free_port()}", "--retries", "1")
    assert done.returncode == 1
    assert "gave up after 2 attempts" in done.stderr and "no association" in done.stderr


def test_sigint_mid_run_then_resume(make: OrthancFactory, release: Path) -> None:
    server = make()
    assert server.dicom_port is not None
    with slow_proxy(server.dicom_port, delay=0.3) as slow:
        target = ("--dimse", f"127.0.0.1:{slow.port}", "--called-aet", AET, "--concurrency", "1")
        process = start_publish(str(release / "sr"), *target)
        before = wait_for_lines(release, 3, process)
        code, _, err = interrupt(process, signal.SIGINT)
        confirmed = len(stored_counts(release))
        assert code == 130 and "interrupted" in err and 3 <= before <= confirmed < 12
        slow.delay = 0.0
        resumed = publish(str(release / "sr"), *target, "--verify")
    assert resumed.returncode == 0, resumed.stderr
    assert f"sent {12 - confirmed}, already there {confirmed}, failed 0 of 12" in resumed.stdout
    _assert_arrived_whole(server, release)
    assert stored_counts(release) == {uid_of(p): 1 for p in sr_files(release)}


def test_server_crashed_mid_run_then_restarted(make: OrthancFactory, release: Path) -> None:
    server = make()
    assert server.dicom_port is not None
    with slow_proxy(server.dicom_port, delay=0.3) as slow:
        target = ("--dimse", f"127.0.0.1:{slow.port}", "--called-aet", AET, "--concurrency", "1")
        process = start_publish(str(release / "sr"), *target, "--retries", "1")
        wait_for_lines(release, 3, process)
        server.kill()  # a graceful stop would first finish the open association
        out, err = process.communicate(timeout=300)
        assert process.returncode == 1, err
        confirmed = len(stored_counts(release))
        assert "gave up after 2 attempts" in err and "run the same command again" in err
        assert f"sent {confirmed}" in out
        server.start()
        slow.delay = 0.0
        rerun = publish(str(release / "sr"), *target, "--verify")
    assert rerun.returncode == 0, rerun.stderr
    assert f"sent {12 - confirmed}, already there {confirmed}" in rerun.stdout
    _assert_arrived_whole(server, release)


def test_a_file_removed_after_planning_fails_alone(make: OrthancFactory, release: Path) -> None:
    server = make()
    assert server.dicom_port is not None
    plan = library.make_plan([release / "sr"], release)
    gone = sr_files(release)[7]
    gone.unlink()
    destination = library.DimseDestination(
        library.DimseTarget("127.0.0.1", server.dicom_port, called_aet=AET))
    result = library.publish(plan, destination, release / "publish" / destination.journal_name(),
                             library.Options(concurrency=1))
    assert (result.sent, result.failed, result.not_sent, result.associations) == (11, 1, 0, 1)
    assert result.failures[0].reason == "cannot read: No such file or directory"
    assert server.instance_count() == 11
