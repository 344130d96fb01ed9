"""Helpers shared by the API tests: JSON requests through Chalice's test client, and checks against openapi.yaml."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from chalice.test import Client
from chalicelib import transactions
from openapi_schema_validator import OAS30Validator

from chalice_app.ops.transaction_table import unsaved_records
from devkit.local_servers import unused_port

OPERATOR = "ops-key"  # the one operator key id of the `keyed_client` fixture's stage


def post_json(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.http.post(path, body=json.dumps(body),
                            headers={"Content-Type": "application/json", **(headers or {})})


def body_of(response: Any) -> Any:
    return json.loads(response.body)


def _inline_refs(node: Any, spec: dict[str, Any]) -> Any:
    """The schema with every local `$ref` replaced by its target (the document has no recursive schemas)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _inline_refs(target, spec)
        return {key: _inline_refs(value, spec) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(value, spec) for value in node]
    return node


def assert_documented(openapi: dict[str, Any], route: str, method: str, response: Any) -> None:
    """The response's status is documented for the route and its JSON body matches the documented schema."""
    documented = openapi["paths"][route][method.lower()]["responses"]
    assert str(response.status_code) in documented, f"{response.status_code} not documented for {method} {route}"
    entry = _inline_refs(documented[str(response.status_code)], openapi)
    schema = entry["content"]["application/json"]["schema"]
    OAS30Validator(schema).validate(body_of(response))
    for header in entry.get("headers", {}):
        assert header in response.headers or header.lower() in response.headers, f"{header} missing"


@dataclass
class LogCapture:
    """The API's JSON log lines (Powertools Logger), parsed."""

    buffer: io.StringIO

    def events(self, message: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.buffer.getvalue().splitlines() if line.strip()]
        return [e for e in lines if message is None or e.get("message") == message]

    def text(self) -> str:
        return self.buffer.getvalue()

    def unsaved(self) -> list[dict[str, Any]]:
        """The records logged as `transaction_unsaved`, read as `make replay-unsaved LOG=...` reads them."""
        return list(unsaved_records(self.text().splitlines()))


def assert_answered_but_unsaved(client: Client, response: Any, api_logs: LogCapture, reason: str) -> dict[str, Any]:
    """A classification answered although its record could not be written: the record is in the log (for
    `reason`), and reading it back says the table is unavailable, with Retry-After. Returns the answer."""
    assert response.status_code == 200
    answer = body_of(response)
    [event] = api_logs.events(transactions.UNSAVED_EVENT)
    assert event["record"]["request_id"] == answer["request_id"]
    assert reason in event["reason"]
    lookup = client.http.get(f"/transactions/{answer['request_id']}")
    assert (lookup.status_code, body_of(lookup)["error"]["code"]) == (503, "table_unavailable")
    assert "Retry-After" in lookup.headers
    return answer


@dataclass
class Reply:
    """What the fake endpoint answers: an AWS rest-json error when `error_type` is set."""

    status: int = 200
    error_type: str | None = None
    body: bytes = b"{}"
    delay_s: float = 0.0


@dataclass
class FakeEndpoint:
    """A SageMaker Runtime imitation that misbehaves on purpose; counts the calls it receives."""

    url: str
    reply: Reply = field(default_factory=Reply)
    calls: int = 0

    def answer(self, reply: Reply) -> None:
        self.reply = reply


def unreachable_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{unused_port()}"


def _emf_documents(stdout: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [d for d in documents if "_aws" in d]


def _metric(documents: list[dict[str, Any]], name: str, **dimensions: str) -> list[Any]:
    """Values of `name` (EMF lists) in the documents whose dimensions include these values."""
    found = []
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        names = {m["Name"] for m in directive["Metrics"]}
        if name in names and all(document.get(k) == v for k, v in dimensions.items()):
            assert directive["Namespace"] == "NewsClassifier"
            found.append(document[name])
    return found
