"""A local HTTP server that answers 200 on `/health` and `/_faults` and 404 elsewhere: what the waits poll."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path in {"/health", "/_faults"} else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def healthy_server() -> Iterator[str]:
    """The server's URL while it runs, on a port the OS chose."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
