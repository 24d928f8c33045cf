"""A private Orthanc on loopback for the network tests: start, stop, restart, kill.

Debian packages ``orthanc`` and ``orthanc-dicomweb``.  Each server gets free ports on
127.0.0.1 (HTTP and, when asked, DICOM; under pytest-xdist from its worker's own block, see
:func:`free_port`), its storage in a temporary folder, its log in
``HOME/orthanc.log`` (with ``verbose=True`` Orthanc logs every association there), and
keeps its ports across :meth:`OrthancServer.restart`, so a client that was talking to it
finds it again; :meth:`OrthancServer.stop` is a graceful stop (Orthanc then finishes the
associations that are open), :meth:`OrthancServer.kill` a crash.  Options: HTTP basic auth
(``users``), a Lua script (``lua``), any other configuration key (``extra``).  (No HTTPS:
Debian's Orthanc 1.10 crashes on its first TLS connection with OpenSSL 3; the TLS tests
put a TLS relay in front, tests/netfaults.py.)

:func:`orthanc_factory` is what fixtures use: it skips, with the reason, when the binary
or the DICOMweb plugin is not installed, and stops every server it made.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PLUGIN_PATHS = (
    Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
    Path("/usr/lib/orthanc/libOrthancDicomWeb.so"),
)
STARTUP_S = 60
AET = "ORTHANC"


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").is_file() else None
    )


def dicomweb_plugin() -> Path | None:
    return next((p for p in PLUGIN_PATHS if p.is_file()), None)


def skip_reason() -> str | None:
    """Why the Orthanc tests cannot run here, or None."""
    if orthanc_binary() is None:
        return "Orthanc is not installed (apt-get install orthanc)"
    if dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return None


# free_port's ports: below Linux's ephemeral range (32768-60999), which bind(("", 0)) and
# outgoing connections draw from, so the kernel never hands one of them to another socket
# between free_port and the server's own bind; each pytest-xdist worker has its own block.
_PORTS_FIRST, _PORTS_END = 20000, 32768
_next_port: int | None = None


def _port_block() -> range:
    """This process's block of ports: the whole range, or a worker's share under xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    size = (_PORTS_END - _PORTS_FIRST) // count
    first = _PORTS_FIRST + (int(worker) % count if worker.isdigit() else 0) * size
    return range(first, first + size)


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now and that no other worker of this
    test run (nor a later call in this one, until the block wraps) is given: ports are
    handed out in turn from this worker's block, from a random start (other test runs on
    the machine start elsewhere); one in use is passed over."""
    global _next_port  # noqa: PLW0603  (one counter per test process)
    block = _port_block()
    if _next_port is None:
        _next_port = random.randrange(len(block))
    for _ in range(len(block)):
        port = block[_next_port % len(block)]
        _next_port += 1
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port of 127.0.0.1 in {block.start}-{block.stop - 1}")


@dataclass
class OrthancServer:
    """One Orthanc process (or none, while stopped) with a fixed home and fixed ports."""

    home: Path
    http_port: int
    dicom_port: int | None
    config: dict[str, Any]
    users: dict[str, str] = field(default_factory=dict)
    verbose: bool = False
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """The REST root, e.g. ``http://127.0.0.1:8042``."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        """The DICOMweb root (STOW-RS, QIDO-RS and WADO-RS live under it)."""
        return f"{self.base}/dicom-web"

    @property
    def dimse(self) -> str:
        """``HOST:PORT`` of the DICOM server."""
        assert self.dicom_port is not None, "this server has no DICOM port"
        return f"127.0.0.1:{self.dicom_port}"

    @property
    def log(self) -> Path:
        return self.home / "orthanc.log"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def start(self) -> None:
        binary = orthanc_binary()
        assert binary is not None
        config_path = self.home / "orthanc.json"
        config_path.write_text(json.dumps(self.config), encoding="utf-8")
        command = [binary, *(["--verbose"] if self.verbose else []), str(config_path)]
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, cwd=self.home,
                env={**os.environ, **self.env},
            )
        self._wait_until_up()

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), as a service manager does."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash does: open associations end mid-way."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- REST helpers (the tests' independent view of what the server holds) --

    def request(
        self, path: str, *, data: bytes | None = None, method: str | None = None,
        headers: dict[str, str] | None = None, timeout: float = 30,
    ) -> bytes:
        all_headers = dict(headers or {})
        if self.users:
            user, password = next(iter(self.users.items()))
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            all_headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, method=method, headers=all_headers
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())

    def get_json(self, path: str) -> Any:
        return json.loads(self.request(path))

    def instance_count(self) -> int:
        return int(self.get_json("/statistics")["CountInstances"])

    def upload(self, data: bytes) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(
            self.request("/instances", data=data, method="POST",
                         headers={"Content-Type": "application/dicom"})
        )
        return answer

    def _wait_until_up(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"Orthanc exited with {self.process.returncode}:\n{self.log_text()[-3000:]}"
                )
            try:
                if b"dicom-web" not in self.request("/plugins/dicom-web", timeout=5):
                    pytest.fail("the DICOMweb plugin did not load")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        pytest.fail(f"Orthanc did not answer within {STARTUP_S} s:\n{self.log_text()[-3000:]}")


def make_server(
    home: Path,
    *,
    dicom: bool = True,
    users: dict[str, str] | None = None,
    lua: str | None = None,
    verbose: bool = False,
    extra: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> OrthancServer:
    """A configured, not yet started server.  ``env`` is added to Orthanc's environment
    (``TCP_NODELAY=1`` makes its DCMTK answer C-STOREs without Nagle's delay)."""
    plugin = dicomweb_plugin()
    assert plugin is not None
    home.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    dicom_port = free_port() if dicom else None
    config: dict[str, Any] = {
        "Name": "csv2sr-tests",
        "StorageDirectory": str(home / "storage"),
        "IndexDirectory": str(home / "storage"),
        "HttpPort": http_port,
        "DicomServerEnabled": dicom,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": bool(users),
        "RegisteredUsers": dict(users or {}),
        "HttpThreadsCount": 4,
        "ConcurrentJobs": 1,
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full"},
    }
    if dicom:
        config |= {
            "DicomAet": AET,
            "DicomPort": dicom_port,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowEcho": True,
        }
    if lua is not None:
        script = home / "script.lua"
        script.write_text(lua, encoding="utf-8")
        config["LuaScripts"] = [str(script)]
    config |= extra or {}
    return OrthancServer(
        home=home, http_port=http_port, dicom_port=dicom_port, config=config,
        users=dict(users or {}), verbose=verbose, env=dict(env or {}),
    )


OrthancFactory = Callable[..., OrthancServer]


@contextlib.contextmanager
def orthanc_factory(tmp: Callable[[str], Path]) -> Iterator[OrthancFactory]:
    """``with orthanc_factory(tmp) as make``: ``make(name, **options)`` starts a server in
    the folder ``tmp(name)``; every server made is stopped on leaving.  Skips the test when
    Orthanc or its DICOMweb plugin is missing."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    servers: list[OrthancServer] = []

    def make(name: str = "orthanc", **options: Any) -> OrthancServer:
        server = make_server(tmp(name), **options)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()
