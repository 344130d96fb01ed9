"""Fixtures for the API and the unit tests of its modules, a plugin of tests/conftest.py: the real app under
Chalice's test client, moto's DynamoDB, the real local endpoint serving the tiny model, a deliberately misbehaving
endpoint, the API's log lines and its OpenAPI document.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from chalice.local import LambdaEventConverter
from chalice.test import Client
from chalicelib import telemetry, transactions

from devkit.stages import CHALICE_DIR, stage_environment
from tests.support.api_testing import OPERATOR, FakeEndpoint, LogCapture

STAGE = "local"


@pytest.fixture
def stage_env(monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> dict[str, str]:
    """The local stage's variables in this process too, so fixtures see what the routes see; metrics on."""
    env = stage_environment(STAGE)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    return env


@pytest.fixture
def table_url(stage_env: dict[str, str], moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's DynamoDB, empty, with no table yet."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    return moto_url


@pytest.fixture
def table(table_url: str) -> str:
    transactions.create_table()
    return stage_environment(STAGE)["TABLE_NAME"]


@pytest.fixture
def real_endpoint(endpoint_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint_url)
    return endpoint_url


@pytest.fixture
def client() -> Iterator[Client]:
    """The real app under Chalice's test client (stage `local`); wire its endpoint and table with fixtures."""
    from app import app

    with Client(app, stage_name=STAGE, project_dir=str(CHALICE_DIR)) as test_client:
        yield test_client


@pytest.fixture
def keyed_client(tmp_path: Path) -> Iterator[Client]:
    """The app with the local stage's settings but one operator, OPERATOR: other callers read only their own.

    Chalice's test client lays a stage's variables over the process's, so the stage config itself is changed
    (in a copy of the project's .chalice/)."""
    from app import app

    shutil.copytree(CHALICE_DIR / ".chalice", tmp_path / ".chalice")
    config_file = tmp_path / ".chalice" / "config.json"
    config = json.loads(config_file.read_text())
    config["stages"][STAGE]["environment_variables"]["OPERATOR_KEY_IDS"] = OPERATOR
    config_file.write_text(json.dumps(config))
    with Client(app, stage_name=STAGE, project_dir=str(tmp_path)) as test_client:
        yield test_client


@pytest.fixture
def gateway_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """API Gateway's key check under Chalice's test client, which has none: fill the returned dict with key value ->
    key id, and a request whose `x-api-key` is one of those values reaches the app with `identity.apiKey` and
    `identity.apiKeyId` set, as API Gateway passes them to Lambda; any other request has neither."""
    keys: dict[str, str] = {}
    create_event = LambdaEventConverter.create_lambda_event

    def with_identity(self: LambdaEventConverter, method: str, path: str, headers: dict[str, str],
                      body: bytes | None = None) -> dict[str, Any]:
        event = create_event(self, method, path, headers, body)
        key = event["headers"].get("x-api-key")
        if key in keys:
            event["requestContext"]["identity"].update(apiKey=key, apiKeyId=keys[key])
        return event

    monkeypatch.setattr(LambdaEventConverter, "create_lambda_event", with_identity)
    return keys


@pytest.fixture
def api(client: Client, table: str, real_endpoint: str) -> Client:
    """The whole happy path: a table on moto and the tiny model behind the local endpoint."""
    return client


@pytest.fixture
def api_logs() -> Iterator[LogCapture]:
    """Add a buffer handler with Powertools' JSON formatter: its own handler holds the stream it was created with."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(telemetry.logger.registered_formatter)
    stdlib_logger = logging.getLogger(telemetry.logger.name)
    level = stdlib_logger.level
    stdlib_logger.setLevel(logging.INFO)  # the API's level; other libraries imported in the session may lower it
    stdlib_logger.addHandler(handler)
    yield LogCapture(buffer)
    stdlib_logger.removeHandler(handler)
    stdlib_logger.setLevel(level)


def _handler_for(fake: Callable[[], FakeEndpoint]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            endpoint = fake()
            endpoint.calls += 1
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            reply = endpoint.reply
            time.sleep(reply.delay_s)
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            if reply.error_type:
                self.send_header("x-amzn-ErrorType", reply.error_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):  # the client timed out and left
                self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    holder: list[FakeEndpoint] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(lambda: holder[0]))
    server.daemon_threads = True
    holder.append(FakeEndpoint(url=f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", holder[0].url)
    yield holder[0]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    return yaml.safe_load((CHALICE_DIR / "openapi.yaml").read_text())
