"""`make local`'s `chalice local` (local_stack/chalice_server.py) takes no traffic before its table and model endpoint
answer: `/health` says 503 with Retry-After, other requests wait and are then served, so none is answered with its
record unsaved; once open, the gate stays open."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devkit.local_servers import unused_port, wait_until
from devkit.local_stack_state import DYNAMODB_DATABASE, FAKE_AWS
from devkit.stages import stage_environment
from local_stack.chalice_server import Readiness
from tests.support import REPO_ROOT
from tests.support.local_table import LocalDynamoDB, found


class Probe:
    """Answers False until opened; counts its calls."""

    def __init__(self) -> None:
        self.open = False
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.open


def test_the_gate_opens_when_every_probe_answers_and_never_closes() -> None:
    table, endpoint = Probe(), Probe()
    readiness = Readiness((table, endpoint), interval_s=0.01)
    assert not readiness.wait(0.0)
    table.open = True
    assert not readiness.wait(0.05)
    threading.Timer(0.05, lambda: setattr(endpoint, "open", True)).start()
    assert readiness.wait(5.0)
    table.open = endpoint.open = False  # an outage later is the API's own business, not the gate's
    calls = table.calls
    assert readiness.wait(0.0) and table.calls == calls


def test_probes_run_at_most_once_per_interval_however_many_requests_wait() -> None:
    probe = Probe()
    readiness = Readiness((probe,), interval_s=0.1)
    waiters = [threading.Thread(target=readiness.wait, args=(0.5,)) for _ in range(8)]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join()
    assert 4 <= probe.calls <= 7  # about 0.5 s / 0.1 s, not 8 waiters x 5 rounds


class _Ping(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _get(url: str, body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture
def api_before_its_stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """server.py's `chalice local --stage local` started first, pointed at a DynamoDB and an endpoint not up yet."""
    dynamodb = LocalDynamoDB(tmp_path / DYNAMODB_DATABASE)
    endpoint_port, api_port = unused_port(), unused_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **FAKE_AWS,
           "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.url,
           "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": f"http://127.0.0.1:{endpoint_port}"}
    api = subprocess.Popen([sys.executable, "-m", "local_stack.chalice_server", "--project-dir", "chalice_app", "local",
                            "--stage", "local", "--host", "127.0.0.1", "--port", str(api_port), "--no-autoreload"],
                           cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name, value in {**FAKE_AWS, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.url,
                        "TABLE_NAME": stage_environment("local")["TABLE_NAME"]}.items():
        monkeypatch.setenv(name, value)
    try:
        yield {"api": f"http://127.0.0.1:{api_port}", "process": api, "dynamodb": dynamodb,
               "endpoint_port": endpoint_port}
    finally:
        _stopped_output(api)
        if dynamodb.process is not None:
            dynamodb.stop(signal.SIGTERM)


@contextmanager
def _ping_endpoint(port: int) -> Iterator[None]:
    """A stand-in endpoint that answers its health check (GET /ping) only."""
    with ThreadingHTTPServer(("127.0.0.1", port), _Ping) as endpoint:
        threading.Thread(target=endpoint.serve_forever, daemon=True).start()
        try:
            yield
        finally:
            endpoint.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("first", ["table", "endpoint"])
def test_requests_wait_for_the_table_and_endpoint_and_none_is_unsaved(api_before_its_stand_ins: dict,
                                                                      first: str) -> None:
    """Either one answering is not enough: the gate opens only once both do."""
    from chalicelib import transactions

    api, process = api_before_its_stand_ins["api"], api_before_its_stand_ins["process"]

    def table() -> None:
        api_before_its_stand_ins["dynamodb"].start()
        transactions.create_table()

    wait_until(lambda: _api_serves(api), time.monotonic() + 60, process)
    status, headers, body = _get(f"{api}/health")
    assert status == 503 and headers["Retry-After"] == "1" and body["error"]["code"] == "starting"

    with ExitStack() as stand_ins:
        if first == "table":
            table()
        else:
            stand_ins.enter_context(_ping_endpoint(api_before_its_stand_ins["endpoint_port"]))
        time.sleep(0.5)  # a few probe rounds with one of the two answering
        assert _get(f"{api}/health")[0] == 503
        held: dict[str, Any] = {}
        sender = threading.Thread(target=lambda: held.update(answer=_get(f"{api}/classify", b'{"headline": "Fed"}')))
        sender.start()
        time.sleep(1.0)
        assert sender.is_alive()  # waiting, not answered
        if first == "table":
            stand_ins.enter_context(_ping_endpoint(api_before_its_stand_ins["endpoint_port"]))
        else:
            table()
        sender.join(30)
        assert _get(f"{api}/health")[0] == 200

    status, _, body = held["answer"]
    # The stand-in endpoint answers its health check only, so the model call fails; the request's record is stored.
    assert status >= 500 and body["error"]["request_ids"]
    assert found(body["error"]["request_ids"]) == body["error"]["request_ids"]
    assert transactions.UNSAVED_EVENT not in _stopped_output(process)


def _stopped_output(process: subprocess.Popen) -> str:
    """Everything the dev server printed, once stopped: Ctrl-C, then SIGKILL if it has not exited in 30 s (a suite
    started as a background job of a non-interactive shell hands its children SIGINT ignored, so Ctrl-C never
    reaches them; what the server logged before is what the tests read)."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


def _api_serves(api: str) -> bool:
    """The dev server answers at all (with anything): it has imported the app."""
    try:
        urllib.request.urlopen(f"{api}/health", timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True
