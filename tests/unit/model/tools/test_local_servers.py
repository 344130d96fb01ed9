"""model.tools.local_servers: waiting for a server; and the loadtest copies the box border forces
(loadtest may not import model tools), pinned to them on a real server and on a closed port."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadtest import stack as loadtest_stack
from loadtest.chaos import wait_for_proxy
from model.tools.local_servers import NotUp, answers, unused_port, wait_until


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path in {"/health", "/_faults"} else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_answers_means_a_200_and_nothing_else(server_url: str) -> None:
    assert answers(f"{server_url}/health")
    assert not answers(f"{server_url}/missing")
    assert not answers(f"http://127.0.0.1:{unused_port()}/health")


def test_wait_until_returns_once_ready_and_fails_at_the_deadline() -> None:
    calls = iter([False, False, True])
    wait_until(lambda: next(calls), time.monotonic() + 5, poll_s=0.01)
    with pytest.raises(NotUp) as failed:
        wait_until(lambda: False, time.monotonic() + 0.05, poll_s=0.01)
    assert failed.value.returncode is None


def test_wait_until_fails_early_when_the_process_exits() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(NotUp) as failed:
        wait_until(lambda: True, time.monotonic() + 60, process)
    assert failed.value.returncode == 3


def test_loadtest_answers_as_the_shared_helper_does(server_url: str) -> None:
    closed = f"http://127.0.0.1:{unused_port()}"
    for url in (server_url, closed):
        assert loadtest_stack.answers(url) == answers(f"{url}/health")


def test_the_chaos_wait_for_the_proxy_agrees_with_wait_until(server_url: str) -> None:
    """Up: both return at once when waiting for it to answer, both time out waiting for it to refuse; closed: the
    other way round."""
    closed = f"http://127.0.0.1:{unused_port()}"
    for url in (server_url, closed):
        up = answers(f"{url}/_faults")
        for answering in (True, False):
            assert shared_wait(url, answering) == chaos_wait(url, answering) == (answering == up)


def shared_wait(url: str, answering: bool) -> bool:
    try:
        wait_until(lambda: answers(f"{url}/_faults") == answering, time.monotonic() + 0.3, poll_s=0.05)
    except NotUp:
        return False
    return True


def chaos_wait(url: str, answering: bool) -> bool:
    try:
        wait_for_proxy(url, answering=answering, deadline=time.monotonic() + 0.3)
    except SystemExit:
        return False
    return True
