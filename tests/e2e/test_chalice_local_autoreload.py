"""End to end: `chalice local` as a Chalice user types it (autoreload on, from the project folder, nothing exported)
against the stand-ins of `make stand-ins`: it answers, settles, ignores reads, restarts exactly once after an edit
and answers again.

The command runs in a copy of chalice_app/ without bytecode, as on a fresh clone, with Python writing bytecode as it
does by default; only the copy's `.chalice/local-aws-config` names the stand-ins' free ports instead of the
default ones, which is how the local stage finds them (tests/unit/local_stack/test_state.py pins the rest).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from devkit.local_servers import NotUpError, answers, unused_port, wait_until
from devkit.local_stack_state import stage_stand_in_urls
from devkit.stages import CHALICE_DIR
from tests.support.local_stack_testing import request_json, running_stand_ins

pytestmark = pytest.mark.slow

RESTART = "Restarting local dev server."  # what Chalice's reloader logs for each restart
QUIET_S = 3.5  # Chalice's stat watcher looks once a second: more than three looks without a restart
# A fresh project's first worker writes the bytecode of app.py and chalicelib/__init__.py (the Chalice CLI's imports
# write no other, chalicelib/__init__.py) while the watcher takes its first look: a restart each at most, then none.
START_BYTECODE = 2
STARTUP_TIMEOUT_S = 90.0
HEADLINE = json.dumps({"headline": "Fed raises interest rates as inflation stays high"}).encode()
EDITED = "chalicelib/validation.py"
STATE_URLS = {"AWS_ENDPOINT_URL_DYNAMODB": "dynamodb_url", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "endpoint_url"}


class ChaliceLocal:
    """`chalice local --stage local --port PORT` in `project`, its output (parent and workers) in one file."""

    def __init__(self, project: Path, port: int, output: Path) -> None:
        self.project = project
        self.url = f"http://127.0.0.1:{port}"
        self.output = output
        # A developer's shell with the venv active: no AWS variables, bytecode written as Python does by default.
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("AWS_") and name != "PYTHONDONTWRITEBYTECODE"}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        with open(output, "wb") as sink:
            self.process = subprocess.Popen(["chalice", "local", "--stage", "local", "--port", str(port)], cwd=project,
                                            env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)

    def restarts(self) -> int:
        return self.output.read_text(errors="replace").count(RESTART)

    def wait_until_serving(self) -> None:
        try:
            wait_until(lambda: answers(f"{self.url}/health"), time.monotonic() + STARTUP_TIMEOUT_S, self.process, 0.2)
        except NotUpError as exc:
            pytest.fail(f"chalice local did not serve ({exc}; {self.restarts()} restarts):\n{self.log_tail()}")

    def classify(self) -> dict[str, Any]:
        status, answer = request_json(f"{self.url}/classify", HEADLINE)
        assert status == 200, (answer, self.log_tail())
        assert answer["label"] in answer["scores"]
        return answer

    def log_tail(self) -> str:
        return self.output.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """Ctrl-C to the group (the reloader's parent and its worker), SIGKILL to what is left after 20 s (a suite
        started as a background job hands its children SIGINT ignored; stopping is not what this module tests)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def fresh_project(destination: Path, state: dict[str, Any]) -> Path:
    """chalice_app/ as a fresh clone has it, its local stage naming these stand-ins instead of the default ports."""
    project = Path(shutil.copytree(CHALICE_DIR, destination / "chalice_app",
                                   ignore=shutil.ignore_patterns("__pycache__", "deployed", "deployments", "venv")))
    config = project / ".chalice" / "local-aws-config"
    text = config.read_text()
    for variable, url in stage_stand_in_urls().items():
        text = text.replace(url, state[STATE_URLS[variable]])
    config.write_text(text)
    return project


@pytest.fixture
def chalice_local(tiny_model_dir: Path, tmp_path: Path) -> Iterator[ChaliceLocal]:
    (tmp_path / "stand-ins").mkdir()
    with running_stand_ins(tiny_model_dir, tmp_path / "stand-ins") as state:
        server = ChaliceLocal(fresh_project(tmp_path, state), unused_port(), tmp_path / "chalice-local.out")
        try:
            yield server
        finally:
            server.stop()


def settled(server: ChaliceLocal) -> int:
    """The restarts so far, once QUIET_S passed without another."""
    for _ in range(START_BYTECODE + 1):
        before = server.restarts()
        time.sleep(QUIET_S)
        if server.restarts() == before:
            return before
    pytest.fail(f"chalice local keeps restarting ({server.restarts()} restarts):\n{server.log_tail()}")


def test_chalice_local_as_typed_serves_settles_and_restarts_once_per_edit(chalice_local: ChaliceLocal) -> None:
    chalice_local.wait_until_serving()
    started = settled(chalice_local)
    assert started <= START_BYTECODE, f"a plain start restarted {started} times:\n{chalice_local.log_tail()}"
    chalice_local.wait_until_serving()
    first = chalice_local.classify()

    for source in (chalice_local.project / "app.py", chalice_local.project / EDITED):
        source.read_text()
    assert settled(chalice_local) == started, f"reading the app's files restarted it:\n{chalice_local.log_tail()}"

    with open(chalice_local.project / EDITED, "a") as module:
        module.write("# an edit while chalice local runs\n")
    try:
        wait_until(lambda: chalice_local.restarts() > started, time.monotonic() + QUIET_S, chalice_local.process)
    except NotUpError:
        pytest.fail(f"no restart after {EDITED} was written:\n{chalice_local.log_tail()}")
    chalice_local.wait_until_serving()
    second = chalice_local.classify()
    assert second["request_id"] != first["request_id"]
    assert settled(chalice_local) == started + 1, f"one edit, more restarts:\n{chalice_local.log_tail()}"
