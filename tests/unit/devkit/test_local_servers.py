"""devkit.local_servers: whether a server answers, and waiting for it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from devkit.local_servers import NotUpError, answers, unused_port, wait_until
from tests.support.healthy_server import healthy_server


@pytest.fixture
def server_url() -> Iterator[str]:
    with healthy_server() as url:
        yield url


def test_answers_means_a_200_and_nothing_else(server_url: str) -> None:
    assert answers(f"{server_url}/health")
    assert not answers(f"{server_url}/missing")
    assert not answers(f"http://127.0.0.1:{unused_port()}/health")


def test_wait_until_returns_once_ready_and_fails_at_the_deadline() -> None:
    calls = iter([False, False, True])
    wait_until(lambda: next(calls), time.monotonic() + 5, poll_s=0.01)
    with pytest.raises(NotUpError) as failed:
        wait_until(lambda: False, time.monotonic() + 0.05, poll_s=0.01)
    assert failed.value.returncode is None


def test_wait_until_fails_early_when_the_process_exits() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(NotUpError) as failed:
        wait_until(lambda: True, time.monotonic() + 60, process)
    assert failed.value.returncode == 3
