"""A stand-in webhook receiver for the simulator's tests: records every POST."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Target:
    """An HTTP receiver that records every POST and answers with ``status``."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with target.lock:
                    target.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = target.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/x/"

    def events(self) -> list[dict]:
        with self.lock:
            return [
                json.loads(body) | {"_headers": headers}
                for headers, body in self.requests
                if json.loads(body)["Event"] != "test"
            ]
