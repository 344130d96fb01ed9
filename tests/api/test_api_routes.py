"""The routes on their happy paths: the real app, PynamoDB on moto, the tiny model behind the local endpoint."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from pathlib import Path

import pytest
from chalice.test import Client
from chalicelib import transactions

from model.artifact import read_metadata
from model.labels import LabelMap
from tests.support.api_testing import OPERATOR, assert_documented, body_of, post_json

pytestmark = pytest.mark.slow  # trains the tiny model and starts the endpoint once per session


def test_classify_answers_with_the_models_labels_and_stores_the_transaction(
        api: Client, tiny_model_dir: Path, openapi: dict) -> None:
    response = post_json(api, "/classify", {"headline": "Stocks rally as the Fed holds rates"})
    assert response.status_code == 200
    assert_documented(openapi, "/classify", "POST", response)
    result = body_of(response)
    assert set(result["scores"]) == set(LabelMap.load(tiny_model_dir).names)
    assert result["label"] == max(result["scores"], key=result["scores"].get)
    assert math.isclose(sum(result["scores"].values()), 1.0, abs_tol=1e-3)
    assert result["model_version"] == read_metadata(tiny_model_dir)["model_version"]

    stored = api.http.get(f"/transactions/{result['request_id']}")
    assert stored.status_code == 200
    assert_documented(openapi, "/transactions/{request_id}", "GET", stored)
    record = body_of(stored)
    assert record["headline"] == "Stocks rally as the Fed holds rates"
    assert (record["status"], record["label"], record["scores"]) == ("ok", result["label"], result["scores"])
    assert record["endpoint_name"] == "news-classifier"
    assert record["variant"] == "AllTraffic"
    assert record["model_latency_ms"] <= record["latency_ms"]
    assert record["expires_at"] > dt.datetime.now(dt.UTC).timestamp() + 80 * 86400


def test_classify_accepts_the_original_projects_body(api: Client) -> None:
    response = post_json(api, "/classify", {"query": {"headline": "New vaccine trial shows promise"}})
    assert response.status_code == 200
    assert body_of(response)["label"] in body_of(response)["scores"]


def test_batch_answers_in_order_with_one_stored_record_per_headline(api: Client, openapi: dict) -> None:
    headlines = ["Apple unveils a new iPhone", "Oil prices fall again", "Star couple announce divorce"]
    response = post_json(api, "/classify/batch", {"headlines": headlines}, headers={"X-Run-Id": "load-42"})
    assert response.status_code == 200
    assert_documented(openapi, "/classify/batch", "POST", response)
    results = body_of(response)["results"]
    assert len({r["request_id"] for r in results}) == 3
    records = [body_of(api.http.get(f"/transactions/{r['request_id']}")) for r in results]
    assert [r["headline"] for r in records] == headlines
    assert [r["label"] for r in records] == [r["label"] for r in results]
    assert {r["run_id"] for r in records} == {"load-42"}


def test_the_day_index_returns_a_time_window_without_a_scan(api: Client) -> None:
    before = dt.datetime.now(dt.UTC)
    ids = [body_of(post_json(api, "/classify", {"headline": f"Headline number {i}"}))["request_id"] for i in range(3)]
    model = transactions.transaction_model()
    window = model.day_index.query(before.strftime("%Y-%m-%d"), model.created_at >= before)
    assert [r.request_id for r in window] == ids


def test_feedback_stores_a_label_of_that_transaction_and_a_retry_is_idempotent(api: Client, openapi: dict) -> None:
    result = body_of(post_json(api, "/classify", {"headline": "Ebola outbreak spreads in West Africa"}))
    other = next(name for name in result["scores"] if name != result["label"])
    path = f"/transactions/{result['request_id']}/feedback"
    first = post_json(api, path, {"label": other})
    assert first.status_code == 200
    assert_documented(openapi, "/transactions/{request_id}/feedback", "POST", first)
    again = post_json(api, path, {"label": other})
    assert again.status_code == 200
    assert body_of(again)["feedback_label"] == body_of(first)["feedback_label"] == other
    assert body_of(api.http.get(f"/transactions/{result['request_id']}"))["feedback_label"] == other


def test_feedback_is_checked_against_the_labels_stored_on_the_transaction(api: Client, openapi: dict) -> None:
    """Labels come from the model's answer: a record scored on other names accepts those names only."""
    request_id = transactions.new_request_id()
    outcome = transactions.Outcome(request_id, "A headline", 5.0, label="Alpha", scores={"Alpha": 0.7, "Beta": 0.3},
                                   model_version="other-model")
    assert transactions.save([transactions.build_record(outcome, dt.datetime.now(dt.UTC), "news-classifier", None)])
    assert post_json(api, f"/transactions/{request_id}/feedback", {"label": "Beta"}).status_code == 200
    refused = post_json(api, f"/transactions/{request_id}/feedback", {"label": "Business"})
    assert refused.status_code == 400
    assert_documented(openapi, "/transactions/{request_id}/feedback", "POST", refused)
    assert body_of(refused)["error"]["code"] == "unknown_label"
    assert "Alpha, Beta" in body_of(refused)["error"]["message"]


def test_feedback_on_a_failed_transaction_is_a_conflict(api: Client, openapi: dict) -> None:
    request_id = transactions.new_request_id()
    outcome = transactions.Outcome(request_id, "A headline", 5.0, error_code="model_error")
    assert transactions.save([transactions.build_record(outcome, dt.datetime.now(dt.UTC), "news-classifier", None)])
    response = post_json(api, f"/transactions/{request_id}/feedback", {"label": "Business"})
    assert response.status_code == 409
    assert_documented(openapi, "/transactions/{request_id}/feedback", "POST", response)


@pytest.mark.parametrize("request_id", [str(uuid.uuid4()), "not-a-uuid", str(uuid.uuid4()).upper()])
def test_unknown_transactions_are_404(api: Client, openapi: dict, request_id: str) -> None:
    for response in (api.http.get(f"/transactions/{request_id}"),
                     post_json(api, f"/transactions/{request_id}/feedback", {"label": "Business"})):
        assert response.status_code == 404
        assert body_of(response)["error"]["code"] == "not_found"
    assert_documented(openapi, "/transactions/{request_id}", "GET", response)


def test_health_says_only_that_the_api_is_up(client: Client, openapi: dict, fake_endpoint) -> None:
    response = client.http.get("/health")
    assert_documented(openapi, "/health", "GET", response)
    assert (response.status_code, body_of(response)) == (200, {"status": "ok"})
    assert fake_endpoint.calls == 0


def test_health_details_tell_operators_the_configuration_without_calling_anything(
        client: Client, keyed_client: Client, openapi: dict, fake_endpoint) -> None:
    response = client.http.get("/health/details")
    assert response.status_code == 200
    assert_documented(openapi, "/health/details", "GET", response)
    assert body_of(response) == {"status": "ok",
                                 "endpoint": {"name": "news-classifier", "configured": True},
                                 "table": {"name": "news-transactions-local", "configured": True}}
    assert fake_endpoint.calls == 0
    refused = keyed_client.http.get("/health/details", headers={"X-Client-Id": "someone"})
    assert_documented(openapi, "/health/details", "GET", refused)
    assert (refused.status_code, body_of(refused)["error"]["code"]) == (403, "forbidden")
    assert keyed_client.http.get("/health/details", headers={"X-Client-Id": OPERATOR}).status_code == 200
