"""Faults of the model endpoint and of the table: the documented status, and no transaction lost silently."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client
from chalicelib import transactions

from tests.support.api_testing import (
    FakeEndpoint,
    LogCapture,
    Reply,
    assert_answered_but_unsaved,
    assert_documented,
    body_of,
    post_json,
    unreachable_url,
)

HEADLINE = {"headline": "Markets slide as oil prices jump"}


def _aws_error(status: int, error_type: str, message: str = "injected") -> Reply:
    return Reply(status=status, error_type=error_type, body=json.dumps({"message": message}).encode())


def _stored() -> list[transactions.TransactionRecord]:
    return list(transactions.transaction_model().scan())


def _prediction(label: str = "Business") -> bytes:
    return json.dumps({"predictions": [{"label": label, "scores": {label: 0.8, "Other": 0.2}}],
                       "model_version": "fake-1"}).encode()


@pytest.mark.parametrize(("reply", "status", "code", "calls", "retry_after"), [
    (_aws_error(400, "ThrottlingException"), 429, "model_throttled", 2, True),  # retried by botocore, then 429
    (_aws_error(424, "ModelError"), 502, "model_error", 1, False),  # not retried: the model failed on this input
    (_aws_error(429, "ModelNotReadyException"), 503, "model_unavailable", 1, True),
    (_aws_error(503, "ServiceUnavailable"), 503, "model_unavailable", 2, True),
    (_aws_error(400, "ValidationError", "Endpoint news-classifier not found"), 503, "model_unavailable", 1, True),
    (Reply(body=b"<html>not json</html>"), 502, "model_error", 1, False),
    (Reply(body=json.dumps({"predictions": [], "model_version": "x"}).encode()), 502, "model_error", 1, False),
], ids=["throttled", "model-error", "not-ready", "service-unavailable", "no-such-endpoint", "garbage",
        "wrong-count"])
def test_model_faults_map_to_documented_statuses_and_are_recorded(
        client: Client, table: str, fake_endpoint: FakeEndpoint, openapi: dict, reply: Reply, status: int, code: str,
        calls: int, retry_after: bool) -> None:
    fake_endpoint.answer(reply)
    response = post_json(client, "/classify", HEADLINE)
    assert (response.status_code, body_of(response)["error"]["code"]) == (status, code)
    assert_documented(openapi, "/classify", "POST", response)
    assert ("Retry-After" in response.headers) == retry_after
    assert fake_endpoint.calls == calls
    [record] = _stored()
    assert (record.status, record.error_code, record.headline) == ("error", code, HEADLINE["headline"])
    assert record.label is None
    assert body_of(response)["error"]["request_ids"] == [record.request_id]


def test_a_slow_model_is_a_504(client: Client, table: str, fake_endpoint: FakeEndpoint,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_READ_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("MODEL_MAX_ATTEMPTS", "1")
    fake_endpoint.answer(Reply(body=_prediction(), delay_s=1.0))
    response = post_json(client, "/classify", HEADLINE)
    assert (response.status_code, body_of(response)["error"]["code"]) == (504, "model_timeout")
    assert [r.error_code for r in _stored()] == ["model_timeout"]


def test_an_endpoint_that_is_down_is_a_503_with_retry_after(client: Client, table: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", unreachable_url())
    response = post_json(client, "/classify/batch", {"headlines": ["One", "Two"]})
    assert (response.status_code, body_of(response)["error"]["code"]) == (503, "model_unavailable")
    assert int(response.headers["Retry-After"]) > 0
    stored = {r.request_id: r.headline for r in _stored()}
    assert [stored[i] for i in body_of(response)["error"]["request_ids"]] == ["One", "Two"]  # input order


def test_without_a_table_the_answer_still_comes_and_replay_restores_the_record(
        client: Client, table_url: str, real_endpoint: str, api_logs: LogCapture) -> None:
    response = post_json(client, "/classify", HEADLINE, headers={"X-Run-Id": "run-7"})
    answer = assert_answered_but_unsaved(client, response, api_logs, "ResourceNotFoundException")

    transactions.create_table()
    report = transactions.replay(api_logs.unsaved())
    assert (report.written, report.already_present) == (1, 0)
    restored = body_of(client.http.get(f"/transactions/{answer['request_id']}"))
    assert (restored["label"], restored["scores"], restored["run_id"]) == (answer["label"], answer["scores"], "run-7")
    assert restored["headline"] == HEADLINE["headline"]


def test_an_unreachable_table_loses_no_record_of_a_batch_or_of_a_model_failure(
        client: Client, stage_env: dict, fake_endpoint: FakeEndpoint, api_logs: LogCapture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", unreachable_url())
    monkeypatch.setenv("TABLE_MAX_RETRIES", "1")
    fake_endpoint.answer(_aws_error(424, "ModelError"))
    assert post_json(client, "/classify/batch", {"headlines": ["One", "Two", "Three"]}).status_code == 502
    records = api_logs.unsaved()
    assert sorted(r["headline"] for r in records) == ["One", "Three", "Two"]
    assert {(r["status"], r["error_code"]) for r in records} == {("error", "model_error")}


def test_an_unreachable_table_loses_no_record_of_a_refused_request(
        client: Client, stage_env: dict, fake_endpoint: FakeEndpoint, api_logs: LogCapture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", unreachable_url())
    monkeypatch.setenv("TABLE_MAX_RETRIES", "1")
    response = post_json(client, "/classify", {"headline": 7})
    assert response.status_code == 400  # the refusal is answered as such, not turned into a 503
    [record] = api_logs.unsaved()
    assert body_of(response)["error"]["request_ids"] == [record["request_id"]]
    assert (record["status"], record["error_code"], json.loads(record["headline"])) == (
        "rejected", "invalid_request", {"headline": 7})
    assert fake_endpoint.calls == 0
