"""``csv2sr publish --url``: STOW-RS into a real Orthanc on loopback, checked by QIDO-RS and
WADO-RS; interrupted (SIGKILL, SIGINT), the server stopped and restarted, faults injected
by a local proxy (429, 5xx, dropped connections, timeouts), auth, TLS, make publish.

Every test starts its own Orthanc (``tests/orthanc.py``: DICOMweb and DIMSE enabled,
storage in tmp_path) and publishes a fresh copy of the fixture release converted once.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import csv2sr.publish as library
from conftest import ROOT
from netfaults import Fault, FaultProxy, fault_proxy, slow_proxy
from orthanc import OrthancFactory, OrthancServer, free_port
from publishing import (
    interrupt,
    journal_files,
    journal_lines,
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
pytest.importorskip("dicomweb_client", reason="dicomweb-client is not installed (extra: test)")

SECRET = "s3cr3t-Pa55-word-0f-the-test"


def _assert_arrived_whole(server: OrthancServer, release: Path) -> None:
    files = sr_files(release)
    assert server.instance_count() == len(files) == 12
    for path in files:
        found = qido_instances(server, uid_of(path))
        assert len(found) == 1, path
        assert wado_bytes(server, path) == path.read_bytes(), path


def test_release_arrives_whole_and_verified(make: OrthancFactory, release: Path) -> None:
    server = make()
    done = publish(str(release / "sr"), "--url", server.dicomweb, "--verify")
    assert done.returncode == 0, done.stderr
    assert "sent 12, already there 0, failed 0 of 12" in done.stdout
    assert "verified 12, missing 0" in done.stdout
    _assert_arrived_whole(server, release)
    [journal] = journal_files(release)
    assert journal.parent == release / "publish" and journal.name.startswith("stow-127.0.0.1-")
    events = [(r["event"], r["path"]) for r in journal_lines(release)]
    keys = [p.relative_to(release).as_posix() for p in sr_files(release)]
    assert sorted(e for e in events if e[0] == "stored") == [("stored", k) for k in keys]
    assert sorted(e for e in events if e[0] == "verified") == [("verified", k) for k in keys]


def test_second_publish_sends_nothing(make: OrthancFactory, release: Path) -> None:
    server = make()
    with fault_proxy(server.http_port) as proxy:  # counts requests; one URL for both runs
        url = f"{proxy.url}/dicom-web"
        assert publish(str(release / "sr"), "--url", url).returncode == 0
        assert proxy.seen
        proxy.seen.clear()
        again = publish(str(release / "sr"), "--url", url)
    assert again.returncode == 0, again.stderr
    assert "sent 0, already there 12, failed 0 of 12" in again.stdout
    assert proxy.seen == []  # not one request
    assert server.instance_count() == 12
    assert set(stored_counts(release).values()) == {1}


def test_dry_run_lists_what_would_be_sent_and_writes_nothing(
    make: OrthancFactory, release: Path
) -> None:
    server = make()
    dry = publish(str(release / "sr"), "--url", server.dicomweb, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    sends = [line for line in dry.stdout.splitlines() if line.startswith("send ")]
    assert sorted(s.split()[1] for s in sends) == sorted(
        p.relative_to(release).as_posix() for p in sr_files(release)
    )
    assert "dry run: 12 to send, 0 already there" in dry.stdout
    assert not (release / "publish").exists() and server.instance_count() == 0
    assert publish(str(release / "sr"), "--url", server.dicomweb).returncode == 0
    after = publish(str(release / "sr"), "--url", server.dicomweb, "--dry-run")
    assert "dry run: 0 to send, 12 already there" in after.stdout


def test_progress_bar_on_a_terminal_only(make: OrthancFactory, release: Path) -> None:
    server = make()
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "csv2sr", "publish", str(release / "sr"), "--url",
         server.dicomweb, "--batch", "1", "--concurrency", "1"],
        stdin=child, stdout=child, stderr=child, close_fds=True,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
    )
    os.close(child)
    chunks: list[bytes] = []
    with contextlib.suppress(OSError):  # the child closed the terminal
        while data := os.read(main, 4096):
            chunks.append(data)
    assert process.wait(timeout=300) == 0
    os.close(main)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    assert "Publishing" in screen and "12/12" in screen
    assert "sent 12, already there 0, failed 0 of 12" in screen
    piped = publish(str(release / "sr"), "--url", server.dicomweb)
    assert "Publishing" not in piped.stdout + piped.stderr


def test_help_names_every_option_and_the_exit_status() -> None:
    done = subprocess.run([sys.executable, "-m", "csv2sr", "publish", "--help"],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0
    for option in ("--url", "--dimse", "--aet", "--called-aet", "--token-env", "--token-file",
                   "--basic-env", "--basic-file", "--ca-bundle", "--journal-dir", "--batch",
                   "--batch-mib", "--concurrency", "--retries", "--timeout", "--verify",
                   "--dry-run", "--quiet", "--verbose", "Exit status", "never on the command"):
        assert option in done.stdout, option


def test_a_refused_instance_fails_alone_with_the_servers_reason(
    make: OrthancFactory, release: Path
) -> None:
    server = make()
    bad = without_study_uid(sr_files(release)[3], release / "sr" / "bad.dcm")
    proxy = FaultProxy(server.http_port)  # counts requests; one URL for both runs
    url = f"{proxy.url}/dicom-web"
    done = publish(str(release / "sr"), "--url", url, "--batch", "5")
    assert done.returncode == 1
    assert "sent 12, already there 0, failed 1 of 13" in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: sr/bad.dcm: refused by the server: HTTP 400 Bad Request, Failure Reason "
        "0xC000 (Error: cannot understand)"
    ]
    assert server.instance_count() == 12
    assert uid_of(bad) not in stored_counts(release)
    proxy.seen.clear()
    again = publish(str(release / "sr"), "--url", url)  # a rerun tries only the bad one
    proxy.close()
    assert again.returncode == 1 and "sent 0, already there 12, failed 1 of 13" in again.stdout
    assert [method for method, _, _ in proxy.seen] == ["POST"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_publish_resumes_with_no_duplicate(
    make: OrthancFactory, release: Path, sig: signal.Signals
) -> None:
    server = make()
    with slow_proxy(server.http_port, delay=0.3) as slow:
        url = f"http://127.0.0.1:{slow.port}/dicom-web"  # the journal is per URL
        process = start_publish(str(release / "sr"), "--url", url,
                                "--batch", "1", "--concurrency", "1")
        before = wait_for_lines(release, 3, process)
        code, _, err = interrupt(process, sig)
        confirmed = len(stored_counts(release))
        assert 3 <= before <= confirmed < 12
        if sig == signal.SIGINT:
            assert code == 130 and "interrupted" in err
            assert f"{12 - confirmed} file(s) not sent: run the same command again" in err
        else:
            assert code == -signal.SIGKILL
        slow.delay = 0.0
        resumed = publish(str(release / "sr"), "--url", url, "--verify")
    assert resumed.returncode == 0, resumed.stderr
    assert f"sent {12 - confirmed}, already there {confirmed}, failed 0 of 12" in resumed.stdout
    assert "verified 12, missing 0" in resumed.stdout
    _assert_arrived_whole(server, release)
    assert stored_counts(release) == {uid_of(p): 1 for p in sr_files(release)}


def test_server_stopped_mid_run_then_restarted_is_survived_by_a_rerun(
    make: OrthancFactory, release: Path
) -> None:
    server = make()
    with slow_proxy(server.http_port, delay=0.3) as slow:
        url = f"http://127.0.0.1:{slow.port}/dicom-web"
        process = start_publish(str(release / "sr"), "--url", url,
                                "--batch", "1", "--concurrency", "1", "--retries", "1")
        wait_for_lines(release, 3, process)
        server.stop()
        out, err = process.communicate(timeout=300)
        assert process.returncode == 1, err
        confirmed = len(stored_counts(release))
        assert "gave up after 2 attempts" in err
        assert f"{12 - confirmed} file(s) not sent: run the same command again" in err
        assert f"sent {confirmed}" in out
        server.start()
        slow.delay = 0.0
        rerun = publish(str(release / "sr"), "--url", url, "--verify")
    assert rerun.returncode == 0, rerun.stderr
    assert f"sent {12 - confirmed}, already there {confirmed}" in rerun.stdout
    _assert_arrived_whole(server, release)


def test_429_5xx_drops_and_timeouts_are_retried(make: OrthancFactory, release: Path) -> None:
    server = make()
    script = [
        Fault(503, {"Retry-After": "1"}), Fault(429, {"Retry-After": "0"}), Fault(),
        Fault(500), Fault(),
        Fault(drop=True), Fault(delay=3), Fault(),
    ]
    with fault_proxy(server.http_port) as proxy:
        proxy.faults = list(script)
        done = publish(str(release / "sr"), "--url", f"{proxy.url}/dicom-web", "--batch", "4",
                       "--concurrency", "1", "--timeout", "1", "--retries", "3")
    assert done.returncode == 0, done.stderr
    assert [action for method, _, action in proxy.seen if method == "POST"] == [
        "503", "429", "forward", "500", "forward", "drop", "delay", "forward",
    ]
    for expected in ("HTTP 503 Service Unavailable; retry 1 of 3",
                     "HTTP 429 Too Many Requests; retry 2 of 3", "HTTP 500",
                     "no answer within 1 s"):
        assert expected in done.stderr
    assert "sent 12, already there 0, failed 0 of 12" in done.stdout
    _assert_arrived_whole(server, release)


def test_a_page_that_is_not_a_store_answer_confirms_nothing(
    make: OrthancFactory, release: Path
) -> None:
    server = make()
    with fault_proxy(server.http_port) as proxy:
        proxy.faults = [Fault(200, {"Content-Type": "text/html"})] * 13  # a login portal
        done = publish(str(release / "sr"), "--url", f"{proxy.url}/dicom-web", "--batch", "12")
        assert done.returncode == 1
        assert "failed 12 of 12" in done.stdout
        assert done.stderr.count("refused by the server: HTTP 200 OK: injected fault") == 12
        assert journal_files(release) == []
        proxy.faults = [Fault(302, {"Location": "http://elsewhere/dicom-web/studies"})]
        moved = publish(str(release / "sr"), "--url", f"{proxy.url}/dicom-web")
    assert moved.returncode == 1
    assert "HTTP 302 Found: the server redirects to http://elsewhere/dicom-web/studies" in (
        moved.stderr)
    assert server.instance_count() == 0


def test_retries_are_bounded(make: OrthancFactory, release: Path) -> None:
    server = make()
    with fault_proxy(server.http_port) as proxy:
        proxy.faults = [Fault(503), Fault(503)]
        done = publish(str(release / "sr"), "--url", f"{proxy.url}/dicom-web",
                       "--concurrency", "1", "--retries", "1")
    assert done.returncode == 1
    assert "HTTP 503 Service Unavailable (gave up after 2 attempts)" in done.stderr
    assert "12 file(s) not sent: run the same command again to resume" in done.stderr
    assert len(proxy.seen) == 2 and server.instance_count() == 0
    assert journal_files(release) == []


def test_unreachable_server_is_a_clear_message(release: Path) -> None:
    done = publish(str(release / "sr"), "--url", f"http://127.0.0.1:{free_port()}/dicom-web",
                   "--retries", "1")
    assert done.returncode == 1
    assert "connection refused (gave up after 2 attempts)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_server_that_confirms_but_does_not_keep_is_caught_by_verify(
    make: OrthancFactory, release: Path
) -> None:
    dropped = sr_files(release)[5]
    lua = (
        "function ReceivedInstanceFilter(dicom, origin, info)\n"
        f"  return dicom.SOPInstanceUID ~= '{uid_of(dropped)}'\nend\n"
    )
    server = make(lua=lua)  # Orthanc answers "stored" for a filtered instance
    done = publish(str(release / "sr"), "--url", server.dicomweb, "--verify")
    assert done.returncode == 1
    assert "sent 12" in done.stdout and "verified 11, missing 1" in done.stdout
    key = dropped.relative_to(release).as_posix()
    assert f"error: {key}: not found by QIDO-RS" in done.stderr
    assert [r["path"] for r in journal_lines(release) if r["event"] == "missing"] == [key]
    dry = publish(str(release / "sr"), "--url", server.dicomweb, "--dry-run")
    assert [line.split()[1] for line in dry.stdout.splitlines()
            if line.startswith("send ")] == [key]  # the confirmation was withdrawn


def _no_secret_anywhere(done: subprocess.CompletedProcess[str], release: Path,
                        secret: str) -> None:
    encoded = base64.b64encode(f"alice:{secret}".encode()).decode()
    for text in (done.stdout, done.stderr):
        assert secret not in text and encoded not in text
    for path in release.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and encoded.encode() not in data, path


def test_basic_auth_from_env_or_file_and_clear_refusals(
    make: OrthancFactory, release: Path, tmp_path: Path
) -> None:
    server = make(users={"alice": SECRET})
    url = server.dicomweb
    none = publish(str(release / "sr"), "--url", url, "--retries", "0")
    assert none.returncode == 1
    assert "HTTP 401: the server wants credentials (--token-env" in none.stderr
    wrong = publish(str(release / "sr"), "--url", url, "--basic-env", "CSV2SR_TEST_BASIC",
                    env={"CSV2SR_TEST_BASIC": "alice:not-it"})
    assert wrong.returncode == 1
    assert ("HTTP 401: the server refused the basic credentials from $CSV2SR_TEST_BASIC"
            in wrong.stderr)
    unset = publish(str(release / "sr"), "--url", url, "--basic-env", "CSV2SR_TEST_UNSET")
    assert unset.returncode == 2 and "$CSV2SR_TEST_UNSET: environment variable not set" in (
        unset.stderr)
    good = publish(str(release / "sr"), "--url", url, "--basic-env", "CSV2SR_TEST_BASIC",
                   "--verify", "-vv", env={"CSV2SR_TEST_BASIC": f"alice:{SECRET}"})
    assert good.returncode == 0, good.stderr
    assert "sent 12" in good.stdout and "verified 12" in good.stdout
    _no_secret_anywhere(good, release, SECRET)
    secret_file = tmp_path / "basic.txt"
    secret_file.write_text(f"alice:{SECRET}\n", encoding="utf-8")
    again = publish(str(release / "sr"), "--url", url, "--basic-file", str(secret_file),
                    "--verify", "-vv")
    assert again.returncode == 0 and "already there 12" in again.stdout
    _no_secret_anywhere(again, release, SECRET)


def test_bearer_token_from_a_file(make: OrthancFactory, release: Path, tmp_path: Path) -> None:
    server = make()
    token_file = tmp_path / "token"
    with fault_proxy(server.http_port, bearer=SECRET) as gateway:
        url = f"{gateway.url}/dicom-web"
        token_file.write_text("wrong-token\n", encoding="utf-8")
        refused = publish(str(release / "sr"), "--url", url, "--token-file", str(token_file))
        assert refused.returncode == 1
        assert f"HTTP 401: the server refused the bearer credentials from {token_file}" in (
            refused.stderr)
        token_file.write_text(f"  {SECRET}\n", encoding="utf-8")
        done = publish(str(release / "sr"), "--url", url, "--token-file", str(token_file),
                       "--verify", "-vv")
    assert done.returncode == 0, done.stderr
    assert "verified 12, missing 0" in done.stdout
    _no_secret_anywhere(done, release, SECRET)


def test_credentials_in_the_url_are_refused_without_echoing_them(release: Path) -> None:
    done = publish(str(release / "sr"), "--url", f"http://alice:{SECRET}@127.0.0.1:1/dicom-web")
    assert done.returncode == 2
    assert "credentials in the URL are refused" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """(the gateway's PEM with certificate and key, the certificate alone: the CA)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=120,
    )
    both = folder / "gateway.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return both, cert


def test_tls_needs_the_ca_bundle(make: OrthancFactory, release: Path, tmp_path: Path) -> None:
    pem, ca = _self_signed(tmp_path)
    server = make()
    with slow_proxy(server.http_port, tls=pem) as gateway:  # https in front of Orthanc
        url = f"https://127.0.0.1:{gateway.port}/dicom-web"
        untrusted = publish(str(release / "sr"), "--url", url,
                            env={"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""})
        assert untrusted.returncode == 1
        assert "TLS: the server's certificate is not trusted" in untrusted.stderr
        assert "give its CA with --ca-bundle" in untrusted.stderr
        assert server.instance_count() == 0
        trusted = publish(str(release / "sr"), "--url", url, "--ca-bundle", str(ca),
                          "--verify", env={"REQUESTS_CA_BUNDLE": os.devnull})  # ours wins
    assert trusted.returncode == 0, trusted.stderr
    assert "sent 12" in trusted.stdout and "verified 12" in trusted.stdout
    assert server.instance_count() == 12


def test_usage_errors(release: Path, tmp_path: Path) -> None:
    sr = str(release / "sr")
    cases = {
        ("--dry-run",): "give one destination",
        ("--url", "ftp://x/y"): "give an http:// or https:// URL",
        ("--url", "http://x/dicom-web", "--dimse", "x:104"): "give one destination",
        ("--dimse", "nohost"): "give HOST:PORT",
        ("--dimse", "x:104", "--called-aet", "WAY-TOO-LONG-AE-TITLE"): "not an AE title",
        ("--url", "http://x/d", "--token-env", "A", "--basic-env", "B"): "give one of",
    }
    for args, message in cases.items():
        done = publish(sr, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(sr_files(release)[0], loose / "a.dcm")
    no_root = publish(str(loose), "--url", "http://127.0.0.1:1/d")
    assert no_root.returncode == 2 and "give --journal-dir" in no_root.stderr


MAKE = shutil.which("make")


@pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")
def test_make_publish_after_the_release(make: OrthancFactory, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("Makefile", "pyproject.toml", "src", "xslt", "fixtures"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, tree / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    env["PYTHONPATH"] = str(tree / "src")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(MAKE), "-C", str(tree), f"PYTHON={sys.executable}", *args],
                              capture_output=True, text=True, env=env, timeout=900,
                              check=False)

    missing = run("publish")
    assert missing.returncode == 2 and "give URL=" in missing.stderr
    assert not (tree / "build").exists()  # the destination is checked before any stage
    assert "csv2sr publish" not in run("-n").stdout  # never part of the default target
    server = make()
    done = run("publish", f"URL={server.dicomweb}", "JOBS=1")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tree / "dist" / "ccc2017-sample-0.1.0.zip").is_file()
    assert "sent 12, already there 0, failed 0 of 12" in done.stdout
    assert "verified 12, missing 0" in done.stdout
    assert server.instance_count() == 12
    again = run("publish", f"URL={server.dicomweb}")
    assert again.returncode == 0 and "sent 0, already there 12" in again.stdout


def test_a_file_removed_after_planning_fails_alone(make: OrthancFactory, release: Path) -> None:
    server = make()
    plan = library.make_plan([release / "sr"], release)
    gone = sr_files(release)[7]
    gone.unlink()
    destination = library.DicomwebDestination(library.DicomwebTarget(server.dicomweb))
    result = library.publish(plan, destination,
                             release / "publish" / destination.journal_name(),
                             library.Options(batch_files=5))
    assert (result.sent, result.failed, result.not_sent) == (11, 1, 0)
    assert result.failures[0].key == gone.relative_to(release).as_posix()
    assert result.failures[0].reason == "cannot read: No such file or directory"
    assert server.instance_count() == 11
