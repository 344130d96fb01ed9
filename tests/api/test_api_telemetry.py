"""CloudWatch telemetry: EMF metrics per request, JSON logs correlated by request id, no client IPs."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from tests.support.api_testing import FakeEndpoint, LogCapture, Reply, _emf_documents, _metric, body_of, post_json

CLIENT_IP = "203.0.113.77"
PREDICTION = json.dumps({"predictions": [{"label": "Science", "scores": {"Science": 0.75, "Health": 0.25}},
                                         {"label": "Health", "scores": {"Science": 0.1, "Health": 0.9}}],
                         "model_version": "fake-2"}).encode()


def test_a_batch_emits_request_model_and_per_label_metrics(client: Client, table: str, fake_endpoint: FakeEndpoint,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    fake_endpoint.answer(Reply(body=PREDICTION))
    capsys.readouterr()
    assert post_json(client, "/classify/batch", {"headlines": ["A", "B"]}).status_code == 200
    documents = _emf_documents(capsys.readouterr().out)
    assert _metric(documents, "Requests", route="/classify/batch") == [[1.0]]
    assert len(_metric(documents, "Latency")) == 1
    assert len(_metric(documents, "ModelLatency")) == 1
    assert _metric(documents, "TopScore") == [[0.75, 0.9]]
    assert _metric(documents, "Predictions", label="Science") == [[1.0]]
    assert _metric(documents, "Predictions", label="Health") == [[1.0]]
    assert _metric(documents, "Errors") == []


def test_errors_are_counted_by_code(client: Client, table: str, fake_endpoint: FakeEndpoint,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert post_json(client, "/classify", {"headline": ""}).status_code == 400
    fake_endpoint.answer(Reply(status=424, error_type="ModelError", body=b"{}"))
    assert post_json(client, "/classify", {"headline": "Oil"}).status_code == 502
    documents = _emf_documents(capsys.readouterr().out)
    assert _metric(documents, "Errors", code="invalid_request") == [[1.0]]
    assert _metric(documents, "Errors", code="model_error") == [[1.0]]


def test_metrics_can_be_switched_off(client: Client, table: str, fake_endpoint: FakeEndpoint,
                                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    fake_endpoint.answer(Reply(body=PREDICTION))
    capsys.readouterr()
    assert post_json(client, "/classify/batch", {"headlines": ["A", "B"]}).status_code == 200
    assert _emf_documents(capsys.readouterr().out) == []


def test_logs_are_json_correlated_by_request_id_and_hold_no_client_ip(
        client: Client, table: str, fake_endpoint: FakeEndpoint, api_logs: LogCapture) -> None:
    fake_endpoint.answer(Reply(status=424, error_type="ModelError", body=b"{}"))
    failed = post_json(client, "/classify", {"headline": "Oil"}, headers={"X-Forwarded-For": CLIENT_IP})
    assert failed.status_code == 502
    fake_endpoint.answer(Reply(body=PREDICTION))
    response = post_json(client, "/classify/batch", {"headlines": ["A", "B"]}, headers={"X-Forwarded-For": CLIENT_IP})
    ids = [r["request_id"] for r in body_of(response)["results"]]

    events = api_logs.events()
    warning = next(e for e in events if e["message"] == "model_call_failed")
    assert warning["request_id"] and warning["aws_error"] == "ModelError"
    requests = api_logs.events("request")
    assert [(e["status"], e.get("error_code")) for e in requests] == [(502, "model_error"), (200, None)]
    assert requests[0]["request_id"] == warning["request_id"]
    assert requests[1]["request_ids"] == ids
    assert all(e["service"] == "news-classifier-api" for e in events)
    assert CLIENT_IP not in api_logs.text()
