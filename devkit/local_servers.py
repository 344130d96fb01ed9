"""Free ports and waiting for a local server: the one definition the local endpoint, the local stack, the load
tests and the tests use."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable


class NotUpError(RuntimeError):
    """What was awaited did not happen: `returncode` is the process's exit code, None when the deadline passed."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__("the deadline passed" if returncode is None else f"exited with code {returncode}")
        self.returncode = returncode


def unused_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (it stays free until something binds it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """GET `url` answers 200; a refused, cut or garbled connection, no answer or any other status is False."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return False


def wait_until(ready: Callable[[], bool], deadline: float, process: subprocess.Popen | None = None,
               poll_s: float = 0.1) -> None:
    """Poll `ready` until it holds; NotUpError as soon as `process` exits, or once `deadline` (time.monotonic) passes.

    The process is checked first, so a server that died is never mistaken for another one on its port.
    """
    while True:
        if process is not None and process.poll() is not None:
            raise NotUpError(process.returncode)
        if ready():
            return
        if time.monotonic() >= deadline:
            raise NotUpError(None)
        time.sleep(poll_s)
