"""The local stack a load run targets: the `make local` already running, or one of its own.

Either way the stack is local_stack/orchestrator.py, driven through its command line, and described by the state
file it writes once every service answers (STATE_DIR/local_stack.json): the URLs and the services' process ids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devkit import local_stack_state
from devkit.local_servers import answers
from devkit.local_stack_state import STATE_FILE, delete_local_table, wait_for_state
from devkit.repo import REPO_ROOT

LOCAL_STACK = "local_stack.orchestrator"  # run from REPO_ROOT
MAKE_LOCAL_STATE_DIR = REPO_ROOT / "artifacts" / "local"  # `make local`'s default LOCAL_STATE_DIR
STARTUP_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0


class StackStartError(RuntimeError):
    """The stack did not come up; the message ends with its output."""


@dataclass(frozen=True)
class LocalStack:
    api_url: str
    endpoint_url: str
    dynamodb_url: str
    process_ids: dict[str, int]  # service name -> pid of the process that leads its group
    api_log: Path | None  # the API's log file; None when it writes to a terminal
    state_dir: Path


def read_state(state_dir: Path) -> LocalStack | None:
    """The stack described by the state file in `state_dir`, if there is one."""
    try:
        state = local_stack_state.read_state(state_dir)
        return LocalStack(api_url=state["api_url"], endpoint_url=state["endpoint_url"],
                          dynamodb_url=state["dynamodb_url"], process_ids=dict(state["process_groups"]),
                          api_log=Path(state["api_log"]) if state.get("api_log") else None, state_dir=state_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_stack(state_dir: Path = MAKE_LOCAL_STATE_DIR) -> LocalStack | None:
    """The stack `make local` runs from `state_dir`, when its API answers."""
    stack = read_state(state_dir)
    return stack if stack is not None and answers(f"{stack.api_url}/health", timeout_s=5) else None


@contextmanager
def own_stack(model_dir: Path, runtime: str, state_dir: Path, extra_args: Sequence[str] = (),
              env: Mapping[str, str] | None = None, keep_table: bool = False) -> Iterator[LocalStack]:
    """A stack of its own on free ports, its logs in `state_dir`; stopped with Ctrl-C (SIGINT) when done.

    `env` adds variables to this process's environment for the stack's services (e.g. the API's timeouts). The
    table starts empty, as load runs were measured, unless `keep_table` keeps the one in `state_dir`.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    if not keep_table:
        delete_local_table(state_dir)
    command = [sys.executable, "-m", LOCAL_STACK, "--model-dir", str(model_dir), "--runtime", runtime,
               "--state-dir", str(state_dir), "--api-port", "0", "--endpoint-port", "0",
               "--dynamodb-port", "0", "--api-log", *extra_args]  # 0: free ports, recorded in the state file
    output = state_dir / "local_stack.out"
    with open(output, "wb") as sink:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, stdout=sink,
                                   stderr=subprocess.STDOUT)
    try:
        yield _wait_until_ready(process, state_dir, output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(STOP_TIMEOUT_S)


def _wait_until_ready(process: subprocess.Popen, state_dir: Path, output: Path) -> LocalStack:
    """The stack writes its state file once every service answered its health check."""
    stack = read_state(state_dir) if wait_for_state(state_dir, process, STARTUP_TIMEOUT_S) is not None else None
    if stack is None:
        raise StackStartError(f"the local stack did not start:\n{output.read_text(errors='replace')[-4000:]}")
    return stack
