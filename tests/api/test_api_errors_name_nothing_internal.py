"""docs/local-stack.md: errors name no endpoint, AWS error code or table; the log lines `model_call_failed` and
`table_unavailable` hold them. Every way the model endpoint and the table fail, checked in everything a client
gets back (status line aside: body and headers), and in the log line that must hold the detail instead."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from devkit.stages import stage_environment
from tests.support.api_testing import FakeEndpoint, LogCapture, Reply, body_of, post_json, unreachable_url

STAGE = stage_environment("local")
ENDPOINT, TABLE = STAGE["ENDPOINT_NAME"], STAGE["TABLE_NAME"]
# Every AWS error code and botocore error the API maps (chalicelib/model_client.py, chalicelib/transactions.py).
AWS_WORDS = ["ThrottlingException", "ModelError", "ModelNotReadyException", "ServiceUnavailable", "ValidationError",
             "InternalFailure", "ResourceNotFoundException", "ProvisionedThroughputExceededException",
             "ReadTimeout", "EndpointConnectionError", "ConnectTimeout", "ClientError", "botocore", "PynamoDB",
             "GetError", "QueryError", "amazonaws"]


def client_sees(response: Any) -> str:
    """The body and every header of a response, as one text."""
    return json.dumps({"body": response.body.decode(), "headers": dict(response.headers)})


def assert_names_nothing_internal(response: Any) -> None:
    seen = client_sees(response)
    assert ENDPOINT not in seen and TABLE not in seen, seen
    assert [word for word in AWS_WORDS if word.lower() in seen.lower()] == [], seen


def aws_error(status: int, code: str) -> Reply:
    """SageMaker Runtime's error, its message naming the endpoint as AWS's own messages do."""
    message = f"Endpoint {ENDPOINT} of account 123456789012 ({code}) failed."
    return Reply(status=status, error_type=code, body=json.dumps({"message": message}).encode())


@pytest.mark.parametrize(("reply", "code"), [
    (aws_error(400, "ThrottlingException"), "ThrottlingException"),
    (aws_error(424, "ModelError"), "ModelError"),
    (aws_error(429, "ModelNotReadyException"), "ModelNotReadyException"),
    (aws_error(503, "ServiceUnavailable"), "ServiceUnavailable"),
    (aws_error(400, "ValidationError"), "ValidationError"),
    (aws_error(500, "InternalFailure"), "InternalFailure"),
    (Reply(body=b"<html>not json</html>"), None),
], ids=["throttled", "model-error", "not-ready", "unavailable", "no-such-endpoint", "internal-failure", "garbage"])
def test_a_failing_model_endpoint_is_named_only_in_the_log(
        client: Client, table: str, fake_endpoint: FakeEndpoint, api_logs: LogCapture, reply: Reply,
        code: str | None) -> None:
    fake_endpoint.answer(reply)
    for response in (post_json(client, "/classify", {"headline": "Oil prices fall"}),
                     post_json(client, "/classify/batch", {"headlines": ["Oil prices fall", "Flu spreads"]})):
        assert response.status_code >= 500 or response.status_code == 429
        assert_names_nothing_internal(response)
    if code is not None:
        logged = api_logs.events("model_call_failed")
        assert logged and {(e["endpoint"], e["aws_error"]) for e in logged} == {(ENDPOINT, code)}


@pytest.mark.parametrize("failure", ["timeout", "unreachable"])
def test_a_slow_or_unreachable_endpoint_is_named_only_in_the_log(
        client: Client, table: str, fake_endpoint: FakeEndpoint, api_logs: LogCapture,
        monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    monkeypatch.setenv("MODEL_MAX_ATTEMPTS", "1")
    if failure == "timeout":
        monkeypatch.setenv("MODEL_READ_TIMEOUT_SECONDS", "0.2")
        fake_endpoint.answer(Reply(body=b"{}", delay_s=1.0))
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", unreachable_url())
    response = post_json(client, "/classify", {"headline": "Oil prices fall"})
    assert response.status_code in {503, 504}
    assert_names_nothing_internal(response)
    [logged] = api_logs.events("model_call_failed")
    assert logged["endpoint"] == ENDPOINT and logged["aws_error"] in {"ReadTimeoutError", "EndpointConnectionError"}


@pytest.mark.parametrize("failure", ["missing", "unreachable"])
def test_an_unavailable_table_is_named_only_in_the_log(client: Client, table_url: str, api_logs: LogCapture,
                                                       monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """No table yet (ResourceNotFoundException), or no DynamoDB at all: every route that reads the table."""
    if failure == "unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", unreachable_url())
        monkeypatch.setenv("TABLE_MAX_RETRIES", "0")
    request_id = "6f1b3c1e-2a4b-4c5d-8e9f-0a1b2c3d4e5f"
    for response in (client.http.get(f"/transactions/{request_id}"), client.http.get("/transactions"),
                     post_json(client, f"/transactions/{request_id}/feedback", {"label": "Business"})):
        assert response.status_code == 503 and body_of(response)["error"]["code"] == "table_unavailable"
        assert_names_nothing_internal(response)
    reasons = [e["reason"] for e in api_logs.events("table_unavailable")]
    assert len(reasons) == 3
    expected = "ResourceNotFoundException" if failure == "missing" else "Could not connect"
    assert all(expected in reason for reason in reasons), reasons
