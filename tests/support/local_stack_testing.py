"""Helpers shared by the end-to-end tests: start the stack as `make local` (or only its stand-ins, as
`make stand-ins`) does and talk JSON to it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devkit.local_servers import unused_port
from devkit.local_stack_state import wait_for_state
from tests.support import REPO_ROOT

LOCAL_STACK = "local_stack.orchestrator"  # run from REPO_ROOT
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


@contextmanager
def _stack_process(args: list[str], output: Path, env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """The stack's process, its output in `output`; stopped with Ctrl-C (SIGINT) unless a test stopped it."""
    with open(output, "wb") as sink:
        process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(60)


def _started(process: subprocess.Popen, state_dir: Path, output: Path, command: str) -> dict[str, Any]:
    """The stack's state once every service answered (the ports it took); the test fails with its output if the
    stack exits or does not come up."""
    state = wait_for_state(state_dir, process, STARTUP_TIMEOUT_S)
    if state is None:
        why = f"exited with {process.returncode}" if process.poll() is not None else f"not up in {STARTUP_TIMEOUT_S} s"
        pytest.fail(f"{command} {why}:\n{output.read_text()}")
    return state


@contextmanager
def starting_stack(model_dir: Path, state_dir: Path, extra_args: Sequence[str] = (),
                   env: Mapping[str, str] | None = None) -> Iterator[RunningStack]:
    """`python -m local_stack.orchestrator`, yielded as soon as it is started: its API may not answer yet, as for any
    client that waits for `/health` itself. Such a client knows the API's port before the stack says anything, so it
    is picked here; the other servers take port 0."""
    api_port = unused_port()
    args = [sys.executable, "-m", LOCAL_STACK, "--model-dir", str(model_dir), "--state-dir", str(state_dir),
            "--api-port", str(api_port), "--endpoint-port", "0", "--dynamodb-port", "0", *extra_args]
    output = state_dir / "make-local.out"
    with _stack_process(args, output, env) as process:
        yield RunningStack(process, f"http://127.0.0.1:{api_port}", args, state_dir, output)


@contextmanager
def running_stack(model_dir: Path, state_dir: Path, extra_args: Sequence[str] = (),
                  env: Mapping[str, str] | None = None) -> Iterator[RunningStack]:
    """`python -m local_stack.orchestrator` on free ports (port 0: the stack picks them and records them in its
    state), once its API answers; `env` adds variables to the stack's."""
    args = [sys.executable, "-m", LOCAL_STACK, "--model-dir", str(model_dir), "--state-dir", str(state_dir),
            "--api-port", "0", "--endpoint-port", "0", "--dynamodb-port", "0", *extra_args]
    output = state_dir / "make-local.out"
    with _stack_process(args, output, env) as process:
        state = _started(process, state_dir, output, "local stack")
        yield RunningStack(process, state["api_url"], args, state_dir, output)


@contextmanager
def running_stand_ins(model_dir: Path, state_dir: Path) -> Iterator[dict[str, Any]]:
    """`make stand-ins` on free ports (moto with the table, the endpoint, no API); yields its state: their URLs."""
    args = [sys.executable, "-m", LOCAL_STACK, "--stand-ins-only", "--model-dir", str(model_dir),
            "--state-dir", str(state_dir), "--endpoint-port", "0", "--dynamodb-port", "0"]
    output = state_dir / "make-stand-ins.out"
    with _stack_process(args, output) as process:
        yield _started(process, state_dir, output, "make stand-ins")
