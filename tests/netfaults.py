"""Network faults in front of a real server, for the publish tests.

``SlowProxy`` is a TCP relay that holds every chunk coming back from the server for
``delay`` seconds: HTTP answers and DIMSE responses alike arrive slowly, so a test can
kill the client or stop the server in the middle of a run.  With ``tls`` (a PEM with the
certificate and its key) it also terminates TLS, as a gateway in front of a PACS does
(Debian's Orthanc 1.10 crashes on its own HTTPS port with OpenSSL 3: civetweb#1316).

``FaultProxy`` is an HTTP reverse proxy that answers the next requests with scripted faults
(a status with headers, a delay longer than the client's timeout, a dropped connection)
before it forwards, and can demand a bearer token as a real gateway would.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
              "proxy-connection", "upgrade", "te", "trailer", "content-encoding"}


def _pipe(source: socket.socket, sink: socket.socket, delay: float) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            if delay:
                time.sleep(delay)
            sink.sendall(chunk)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class SlowProxy:
    """``127.0.0.1:port`` relays to ``upstream``; replies are held ``delay`` s per chunk."""

    def __init__(self, upstream_port: int, delay: float, tls: Path | None = None) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.tls: ssl.SSLContext | None = None
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(tls)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                self.connections += 1
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            if self.tls is not None:
                client = self.tls.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), 5)
        except OSError:  # a refused handshake, or a dead server: the connection ends
            client.close()
            return
        threading.Thread(target=_pipe, args=(client, upstream, 0.0), daemon=True).start()
        _pipe(upstream, client, self.delay)

    def close(self) -> None:
        self.listener.close()


@dataclass
class Fault:
    """One scripted answer: ``status`` (with ``headers``), or ``delay`` s then forward,
    or ``drop`` (close the connection without an answer)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


class FaultProxy:
    """An HTTP reverse proxy to ``127.0.0.1:upstream_port`` with scripted faults."""

    def __init__(self, upstream_port: int, *, bearer: str | None = None,
                 only: str = "POST") -> None:
        self.upstream_port = upstream_port
        self.bearer = bearer
        self.only = only  # the method the faults apply to
        self.faults: list[Fault] = []
        # (method, path, what the proxy did on arrival: "503", "drop", "delay", "forward")
        self.seen: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            def do_POST(self) -> None:
                proxy.handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_fault(self, method: str) -> Fault | None:
        with self.lock:
            if method == self.only and self.faults:
                return self.faults.pop(0)
        return None

    def _saw(self, handler: http.server.BaseHTTPRequestHandler, action: str) -> None:
        with self.lock:
            self.seen.append((handler.command, handler.path, action))

    def _answer(self, handler: http.server.BaseHTTPRequestHandler, status: int,
                headers: dict[str, str], body: bytes = b"") -> None:
        with contextlib.suppress(OSError):  # the client may have given up (a timeout)
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

    def handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if self.bearer is not None and (
            handler.headers.get("Authorization") != f"Bearer {self.bearer}"
        ):
            self._saw(handler, "401")
            self._answer(handler, 401, {"WWW-Authenticate": 'Bearer realm="test"'})
            return
        fault = self._next_fault(handler.command)
        if fault is not None and fault.drop:
            self._saw(handler, "drop")
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.status is not None:
            self._saw(handler, str(fault.status))
            self._answer(handler, fault.status, fault.headers, b"injected fault")
            return
        if fault is not None and fault.delay:
            self._saw(handler, "delay")
            time.sleep(fault.delay)
        else:
            self._saw(handler, "forward")
        self._forward(handler, body)

    def _forward(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in HOP_BY_HOP | {"host", "authorization",
                                                     "accept-encoding"}}
        try:
            upstream.request(handler.command, handler.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        except OSError:
            self._answer(handler, 502, {})
            return
        finally:
            upstream.close()
        kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
        self._answer(handler, response.status, kept, data)


@contextlib.contextmanager
def fault_proxy(upstream_port: int, **options: object) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream_port, **options)  # type: ignore[arg-type]
    try:
        yield proxy
    finally:
        proxy.close()


@contextlib.contextmanager
def slow_proxy(upstream_port: int, delay: float = 0.0,
               tls: Path | None = None) -> Iterator[SlowProxy]:
    proxy = SlowProxy(upstream_port, delay, tls)
    try:
        yield proxy
    finally:
        proxy.close()
