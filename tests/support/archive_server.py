"""A stand-in for UCI's download server on 127.0.0.1: archives of the real layout, built here, served well or badly.

The UCI zip holds `newsCorpora.csv` (raw: 8 tab-separated columns, no header), `2pageSessions.csv`, `readme.txt`
and macOS resource forks under `__MACOSX/`; `uci_zip` builds the same layout around a generated corpus.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CATEGORIES = "betm"


def corpus_text(rows: int, publishers: int = 25) -> str:
    """`rows` lines of newsCorpora.csv, every category and publisher represented, each title distinct."""
    return "".join(f"{i + 1}\tHeadline number {i} about {CATEGORIES[i % 4]} news\thttp://example.com/{i}\t"
                   f"Paper {i % publishers}\t{CATEGORIES[i % 4]}\tstory{i % 40}\texample.com\t{1394470370698 + i}\n"
                   for i in range(rows))


def uci_zip(corpus: str | None, member: str = "newsCorpora.csv") -> bytes:
    """An archive laid out like UCI's, holding `corpus` as `member` (None: no corpus at all)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if corpus is not None:
            archive.writestr(member, corpus)
        archive.writestr("2pageSessions.csv", "story1\texample.com\tb\thttp://a http://b\n")
        archive.writestr("readme.txt", "SUMMARY: Dataset of references (urls) to news web pages\n")
        archive.writestr("__MACOSX/._readme.txt", b"\x00\x05\x16\x07")
    return buffer.getvalue()


@dataclass
class Answer:
    body: bytes
    status: int = 200
    sent: int | None = None  # bytes actually sent before the connection closes (None: all); Content-Length is full
    stall_s: float = 0  # a pause between the headers and the body


class ArchiveServer:
    """Serves `answers[path]`; any other path is a 404."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer = answers.get(self.path, Answer(b"not found", 404))
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.flush()
                time.sleep(answer.stall_s)
                with contextlib.suppress(ConnectionError):  # a client that gave up waiting
                    self.wfile.write(answer.body[:answer.sent])

            def log_message(self, *args: object) -> None:
                """Quiet: the tests read the client's errors, not the server's log."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@contextlib.contextmanager
def archive_server() -> Iterator[ArchiveServer]:
    server = ArchiveServer()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
