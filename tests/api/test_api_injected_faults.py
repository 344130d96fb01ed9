"""The API against injected faults of the real local endpoint and of the DynamoDB fault proxy in front of moto:
the documented status for each endpoint fault, and an answer plus a replayable `transaction_unsaved` event
while the table is throttled or down."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from chalicelib import transactions

from devkit.local_servers import NotUpError, answers, wait_until
from local_stack.dynamodb_faults import FaultProxy
from tests.support.api_testing import LogCapture, assert_answered_but_unsaved, assert_documented, body_of, post_json

pytestmark = pytest.mark.slow
HEADLINE = {"headline": "Markets slide as oil prices jump"}
BATCH = {"headlines": ["Fed holds rates", "New phone unveiled", "Flu season starts early"]}


def _send(url: str, method: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (urllib.error.URLError, ConnectionError, http.client.HTTPException):  # refused, or cut by an outage
        return 0, None


@pytest.fixture
def faulty_endpoint(fault_endpoint_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The API calls the fault-injecting endpoint; its faults are cleared after the test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fault_endpoint_url)
    yield fault_endpoint_url
    assert _send(f"{fault_endpoint_url}/_faults", "DELETE")[0] == 200


@pytest.mark.parametrize(("faults", "status", "code"), [
    ({"error_rate": 1.0, "error_status": 500}, 502, "model_error"),
    ({"throttle_rate": 1.0}, 429, "model_throttled"),
    ({"down": "not-found"}, 503, "model_unavailable"),
    ({"down": "not-ready"}, 503, "model_unavailable"),
    ({"down": "unavailable"}, 503, "model_unavailable"),
    ({"latency_ms": 1500}, 504, "model_timeout"),
], ids=["model-error", "throttled", "not-found", "not-ready", "unavailable", "timeout"])
def test_each_endpoint_fault_gets_its_documented_status_and_stores_every_headline(
        client: Client, table: str, faulty_endpoint: str, openapi: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        faults: dict[str, Any], status: int, code: str) -> None:
    monkeypatch.setenv("MODEL_READ_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("MODEL_MAX_ATTEMPTS", "1")
    assert _send(f"{faulty_endpoint}/_faults", "PUT", faults)[0] == 200
    response = post_json(client, "/classify/batch", BATCH, headers={"X-Run-Id": "fault-run"})
    error = body_of(response)["error"]
    assert (response.status_code, error["code"]) == (status, code)
    assert_documented(openapi, "/classify/batch", "POST", response)  # Retry-After where the document requires it
    stored = {r.request_id: r for r in transactions.transaction_model().scan()}
    assert sorted(stored) == sorted(error["request_ids"])
    assert {(r.status, r.error_code, r.run_id) for r in stored.values()} == {("error", code, "fault-run")}


def test_latency_below_the_read_timeout_only_slows_the_answer(client: Client, table: str, faulty_endpoint: str) -> None:
    assert _send(f"{faulty_endpoint}/_faults", "PUT", {"latency_ms": 200})[0] == 200
    response = post_json(client, "/classify", HEADLINE)
    assert response.status_code == 200
    assert transactions.find(body_of(response)["request_id"]).model_latency_ms >= 200


@pytest.fixture
def proxied_table(stage_env: dict[str, str], moto_url: str, real_endpoint: str,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The API's table on moto behind the fault proxy; the model is the real tiny one."""
    proxy = FaultProxy("127.0.0.1", 0, moto_url)
    proxy.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
    monkeypatch.setenv("TABLE_MAX_RETRIES", "1")
    transactions.create_table()
    yield proxy
    proxy.stop()


def _wait_for_proxy(proxy: FaultProxy, answering: bool) -> None:
    try:
        wait_until(lambda: answers(f"{proxy.url}/_faults") == answering, time.monotonic() + 15, poll_s=0.05)
    except NotUpError:
        pytest.fail(f"the proxy did not {'reopen' if answering else 'close'} its port")


def test_a_throttled_table_still_answers_and_the_replay_restores_the_record(
        client: Client, proxied_table: FaultProxy, api_logs: LogCapture) -> None:
    assert _send(f"{proxied_table.url}/_faults", "PUT", {"throttle_rate": 1.0})[0] == 200
    response = post_json(client, "/classify", HEADLINE, headers={"X-Run-Id": "throttled-run"})
    answer = assert_answered_but_unsaved(client, response, api_logs, "ProvisionedThroughputExceededException")

    assert _send(f"{proxied_table.url}/_faults", "DELETE")[0] == 200
    first, again = transactions.replay(api_logs.unsaved()), transactions.replay(api_logs.unsaved())
    assert (first.written, again.written, again.already_present) == (1, 0, 1)  # replaying twice is harmless
    restored = body_of(client.http.get(f"/transactions/{answer['request_id']}"))
    assert (restored["label"], restored["run_id"]) == (answer["label"], "throttled-run")


def test_a_table_outage_loses_no_record_of_a_batch(client: Client, proxied_table: FaultProxy,
                                                   api_logs: LogCapture) -> None:
    assert _send(f"{proxied_table.url}/_faults/outage", "POST", {"seconds": 600})[0] == 202  # until it is ended
    _wait_for_proxy(proxied_table, answering=False)
    response = post_json(client, "/classify/batch", BATCH, headers={"X-Run-Id": "outage-run"})
    assert response.status_code == 200
    ids = [result["request_id"] for result in body_of(response)["results"]]
    assert sorted(e["record"]["request_id"] for e in api_logs.events(transactions.UNSAVED_EVENT)) == sorted(ids)

    proxied_table.end_outage()
    _wait_for_proxy(proxied_table, answering=True)
    assert transactions.replay(api_logs.unsaved()).written == len(ids)
    for request_id in ids:
        assert body_of(client.http.get(f"/transactions/{request_id}"))["run_id"] == "outage-run"
