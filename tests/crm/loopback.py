"""A loopback HTTP server for the tests of the guarded HTTP layer: each path answers in one
way a hostile or broken server might (redirects, huge or gzip-bomb replies, a trickle),
and every request it gets is recorded, so a test can prove that nothing reached it."""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MB = 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def do_GET(self):  # noqa: N802
        self._answer(b"")

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length))

    def _answer(self, body: bytes) -> None:
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        path = self.path.split("?", 1)[0]
        behaviour = self.server.behaviour.get(path) or self.server.behaviour.get("*")
        if behaviour is None:
            self._send(200, b"ok", "text/plain")
            return
        # The client may stop reading, as it should with a reply too large or too slow.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            behaviour(self)

    def _send(self, status: int, body: bytes, content_type: str, headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def log_message(self, format, *args):  # noqa: A002
        return


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.connections = 0
        self.behaviour: dict = {}

    def process_request(self, request, client_address):
        # Counted before any byte is read: a refused connection never gets here.
        self.connections += 1
        super().process_request(request, client_address)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def loopback_server():
    server = LoopbackServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# -- behaviours ---------------------------------------------------------------------------


def redirect(status: int, location: str):
    def answer(handler: _Handler) -> None:
        handler._send(status, b"", "text/plain", [("Location", location)])

    return answer


def soap(xml: bytes, status: int = 200):
    def answer(handler: _Handler) -> None:
        handler._send(status, xml, "text/xml; charset=utf-8")

    return answer


def oversized(megabytes: int, *, declared: bool):
    """A reply of ``megabytes`` MB, with its Content-Length or streamed in chunks."""
    block = b"<a>" + b"x" * (MB - 7) + b"</a>"

    def answer(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/xml")
        if declared:
            handler.send_header("Content-Length", str(megabytes * MB))
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(megabytes):
            if declared:
                handler.wfile.write(block)
            else:
                handler.chunk(block)
        if not declared:
            handler.wfile.write(b"0\r\n\r\n")

    return answer


def gzip_bomb(expanded_megabytes: int = 1024):
    """About 1 MB of gzip that expands to ``expanded_megabytes`` MB of zeros, compressed
    as it is sent (the client is expected to stop long before the end)."""

    def answer(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/xml")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = b"\0" * MB
        for _ in range(expanded_megabytes):
            data = compressor.compress(zeros)
            if data:
                handler.chunk(data)
        handler.chunk(compressor.flush())
        handler.wfile.write(b"0\r\n\r\n")

    return answer


def trickle(total_bytes: int = 100, every_seconds: float = 0.5):
    """A reply that sends one byte every ``every_seconds``: each read gets a byte well
    within any per-read timeout, so only an overall deadline ends it."""

    def answer(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/xml")
        handler.send_header("Content-Length", str(total_bytes))
        handler.end_headers()
        handler.wfile.flush()
        for _ in range(total_bytes):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(every_seconds)

    return answer
