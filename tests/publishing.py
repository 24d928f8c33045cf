"""What the publish tests share: a converted fixture release, running ``csv2sr publish``
as a real process, and an independent look at what the server holds (QIDO-RS and WADO-RS
through urllib, not through csv2sr's own client).  Its fixtures are in ``publish_fixtures``."""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import pydicom

from conftest import FIXTURES
from orthanc import OrthancServer

SAMPLE = FIXTURES / "ccc2017-sample.csv"


def convert_sample(out: Path) -> Path:
    """``csv2sr convert fixtures/ccc2017-sample.csv -o OUT``: the fixture release."""
    done = subprocess.run(
        [sys.executable, "-m", "csv2sr", "convert", str(SAMPLE), "-o", str(out), "-q",
         "--jobs", "1"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def copy_release(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def sr_files(release: Path) -> list[Path]:
    return sorted((release / "sr").rglob("*.dcm"))


def uid_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def publish_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "csv2sr", "publish", *args]


def publish(*args: str, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``csv2sr publish ARGS`` to its end."""
    return subprocess.run(
        publish_command(*args), capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **(env or {})},
    )


def start_publish(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        publish_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def journal_files(release: Path) -> list[Path]:
    return sorted((release / "publish").glob("*.jsonl"))


def journal_lines(release: Path) -> list[dict[str, Any]]:
    """Every complete line of every journal, parsed (a torn line would fail here)."""
    lines: list[dict[str, Any]] = []
    for path in journal_files(release):
        data = path.read_bytes()
        lines += [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]
    return lines


def stored_counts(release: Path) -> Counter[str]:
    return Counter(r["sop_instance_uid"] for r in journal_lines(release) if r["event"] == "stored")


def wait_for_lines(release: Path, count: int, process: subprocess.Popen[str],
                   timeout: float = 120) -> int:
    """Wait until the journals hold at least ``count`` stored lines (the run is mid-way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        journals = journal_files(release)
        if journals:
            stored = sum(1 for r in journal_lines(release) if r["event"] == "stored")
            if stored >= count:
                return stored
        if process.poll() is not None:
            raise AssertionError(f"publish ended early: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError("the journal did not grow")


def interrupt(process: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    process.send_signal(sig)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def qido_instances(server: OrthancServer, uid: str) -> list[dict[str, Any]]:
    """QIDO-RS ``/instances?SOPInstanceUID=uid`` as the server answers it."""
    query = urllib.parse.urlencode({"SOPInstanceUID": uid})
    found: list[dict[str, Any]] = json.loads(
        server.request(f"/dicom-web/instances?{query}",
                       headers={"Accept": "application/dicom+json"})
    )
    return found


def wado_bytes(server: OrthancServer, path: Path) -> bytes:
    """WADO-RS RetrieveInstance of the file's instance: the one part's bytes."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    body = server.request(
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
    )
    content_type = server_content_type(body)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = [part.get_payload(decode=True) for part in message.iter_parts()]
    assert len(parts) == 1, len(parts)
    payload = parts[0]
    assert isinstance(payload, bytes)
    return payload


def server_content_type(body: bytes) -> str:
    """The multipart boundary is the first line of the body (``--boundary``)."""
    boundary = body.split(b"\r\n", 1)[0][2:].decode()
    return f'multipart/related; type="application/dicom"; boundary="{boundary}"'


def dataset_bytes(data: bytes) -> bytes:
    """The bytes after the File Meta Information (PS3.10 7.1), which a C-STORE carries."""
    group_length = int.from_bytes(data[140:144], "little")  # (0002,0000) UL value
    return data[144 + group_length:]


def without_study_uid(source: Path, dest: Path) -> Path:
    """A bad file: the same SR with a new SOP Instance UID and no Study Instance UID
    (Type 1, PS3.3 C.7.2.1), which a server cannot file."""
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid(
        entropy_srcs=[str(dest)]
    )
    del ds.StudyInstanceUID
    ds.save_as(dest, enforce_file_format=True)
    return dest
