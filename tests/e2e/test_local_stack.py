"""End to end: start the stack as `make local` does, talk HTTP to `chalice local`, stop it with Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from devkit.local_servers import unused_port, wait_until
from tests.support.local_stack_testing import REPO_ROOT, RunningStack, request_json, running_stack

pytestmark = pytest.mark.slow


def test_the_stack_classifies_and_stores_over_http(stack: RunningStack) -> None:
    status, answer = request_json(f"{stack.api_url}/classify", json.dumps({"headline": "Fed raises rates"}).encode())
    assert status == 200
    assert answer["label"] in answer["scores"]
    status, record = request_json(f"{stack.api_url}/transactions/{answer['request_id']}")
    assert (status, record["label"], record["headline"]) == (200, answer["label"], "Fed raises rates")
    example = f"curl -s -X POST {stack.api_url}/classify"
    wait_until(lambda: example in stack.output.read_text(), time.monotonic() + 30)  # the banner follows the state


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b'{"headline": "caf\xe9"}', "application/json", 400, "invalid_json"),
    (b'{"headline": ', "application/json", 400, "invalid_json"),
    (json.dumps({"headline": "x" * 10_000}).encode(), "application/json", 413, "too_large"),
    (b"headline=Oil", "text/plain", 415, "unsupported_media_type"),
    (json.dumps({"headlines": []}).encode(), "application/json", 400, "invalid_request"),
])
def test_bad_input_over_http_gets_our_error_shape(stack: RunningStack, body: bytes, content_type: str, status: int,
                                                  code: str) -> None:
    route = "/classify/batch" if b"headlines" in body else "/classify"
    got_status, answer = request_json(f"{stack.api_url}{route}", body, content_type)
    assert (got_status, answer["error"]["code"]) == (status, code)
    assert set(answer) == {"error"} and answer["error"]["message"]


def test_a_second_instance_says_so_and_leaves_the_first_running(stack: RunningStack) -> None:
    second = subprocess.run(stack.args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "already running" in second.stderr and stack.api_url in second.stderr
    assert request_json(f"{stack.api_url}/health")[0] == 200


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for their reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            return True
    return False


def test_ctrl_c_stops_every_process(tiny_model_dir: Path, tmp_path: Path) -> None:
    """On a stack of its own: the module's stack is shared by the other tests, whatever order they run in."""
    with running_stack(tiny_model_dir, tmp_path) as stack:
        groups = json.loads((stack.state_dir / "local_stack.json").read_text())["process_groups"]
        assert len(groups) == 3 and all(_group_alive(pgid) for pgid in groups.values())
        stack.process.send_signal(signal.SIGINT)
        assert stack.process.wait(60) == 0
    assert not [name for name, pgid in groups.items() if _group_alive(pgid)]
    assert "killed" not in stack.output.read_text()  # every service stopped on SIGTERM, none needed SIGKILL
    assert not (stack.state_dir / "local_stack.json").exists()
    with socket.socket() as sock:  # nothing listens on the API port any more
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", int(stack.api_url.rsplit(":", 1)[1])))


def test_a_busy_port_is_named_with_the_variable_that_moves_it(tmp_path: Path) -> None:
    from local_stack.orchestrator import LocalStackError, StackConfig, check_ports_free

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = StackConfig(model_dir=tmp_path, runtime="auto", host="127.0.0.1", api_port=unused_port(),
                             endpoint_port=busy.getsockname()[1], dynamodb_port=unused_port(), state_dir=tmp_path)
        with pytest.raises(LocalStackError, match=f"port {config.endpoint_port} .* ENDPOINT_PORT="):
            check_ports_free(config)


def test_settings_the_api_would_refuse_stop_the_stack_before_it_starts(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from local_stack.orchestrator import LocalStackError, StackConfig, check_settings

    config = StackConfig(model_dir=tmp_path, runtime="auto", host="127.0.0.1", api_port=unused_port(),
                         endpoint_port=unused_port(), dynamodb_port=unused_port(), state_dir=tmp_path)
    check_settings(config)
    monkeypatch.setenv("MODEL_READ_TIMEOUT_SECONDS", "soon")  # the local stage leaves it to the environment
    with pytest.raises(LocalStackError, match="the API would refuse its settings: MODEL_READ_TIMEOUT_SECONDS='soon'"):
        check_settings(config)
