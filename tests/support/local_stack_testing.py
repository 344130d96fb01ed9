"""Helpers shared by the end-to-end tests: start the stack as `make local` (or only its stand-ins, as
`make stand-ins`) does and talk JSON to it over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalice_app.local.state import STATE_FILE, wait_for_state
from model.tools.local_servers import NotUp, answers, unused_port, wait_until
from tests.support import REPO_ROOT

LOCAL_STACK = "chalice_app.local.stack"  # run from REPO_ROOT
STARTUP_TIMEOUT_S = 180


@dataclass
class RunningStack:
    process: subprocess.Popen
    api_url: str
    args: list[str]
    state_dir: Path
    output: Path


def request_json(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _wait_for_health(stack: RunningStack) -> None:
    try:
        wait_until(lambda: (stack.state_dir / STATE_FILE).exists() and answers(f"{stack.api_url}/health"),
                   time.monotonic() + STARTUP_TIMEOUT_S, stack.process, poll_s=0.3)
    except NotUp as exc:
        why = (f"exited with {exc.returncode}" if exc.returncode is not None
               else f"not ready after {STARTUP_TIMEOUT_S} s")
        pytest.fail(f"local stack {why}:\n{stack.output.read_text()}")


@contextmanager
def _stack_process(args: list[str], output: Path) -> Iterator[subprocess.Popen]:
    """The stack's process, its output in `output`; stopped with Ctrl-C (SIGINT) unless a test stopped it."""
    with open(output, "wb") as sink:
        process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(60)


@contextmanager
def running_stack(model_dir: Path, state_dir: Path, extra_args: Sequence[str] = ()) -> Iterator[RunningStack]:
    """`python -m chalice_app.local.stack` on free ports, once its API answers."""
    api_port = unused_port()
    args = [sys.executable, "-m", LOCAL_STACK, "--model-dir", str(model_dir), "--state-dir", str(state_dir),
            "--api-port", str(api_port), "--endpoint-port", str(unused_port()),
            "--dynamodb-port", str(unused_port()), *extra_args]
    output = state_dir / "make-local.out"
    with _stack_process(args, output) as process:
        running = RunningStack(process, f"http://127.0.0.1:{api_port}", args, state_dir, output)
        _wait_for_health(running)
        yield running


@contextmanager
def running_stand_ins(model_dir: Path, state_dir: Path) -> Iterator[dict[str, Any]]:
    """`make stand-ins` on free ports (moto with the table, the endpoint, no API); yields its state: their URLs."""
    args = [sys.executable, "-m", LOCAL_STACK, "--stand-ins-only", "--model-dir", str(model_dir),
            "--state-dir", str(state_dir), "--endpoint-port", "0", "--dynamodb-port", "0"]
    output = state_dir / "make-stand-ins.out"
    with _stack_process(args, output) as process:
        state = wait_for_state(state_dir, process, STARTUP_TIMEOUT_S)
        if state is None:
            pytest.fail(f"make stand-ins did not start:\n{output.read_text()}")
        yield state
