"""A/B routing through the real app: two fake endpoints, MODEL_VARIANTS, transactions and metrics per variant."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from chalice.test import Client
from chalicelib import transactions, validation

from tests.support.api_testing import assert_documented, body_of, post_json

VARIANTS = {"news-v3": "Science", "news-v4": "Health"}  # endpoint -> the label its fake model always answers
FAILING = "news-v5"  # answers every call with a ModelError
_PATH = re.compile(r"/endpoints/(?P<name>[^/]+)/invocations")


@dataclass
class TwoEndpoints:
    url: str
    calls: Counter[str] = field(default_factory=Counter)


def _prediction(label: str) -> dict[str, Any]:
    other = "Health" if label == "Science" else "Science"
    return {"label": label, "scores": {label: 0.8, other: 0.2}}


def _handler(endpoints: TwoEndpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            name = _PATH.fullmatch(self.path)["name"]
            endpoints.calls[name] += 1
            inputs = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["inputs"]
            if name == FAILING:
                self._send(424, {"ErrorCode": "SERVER_ERROR_FROM_MODEL", "Message": "boom"},
                           {"x-amzn-ErrorType": "ModelError"})
            elif name not in VARIANTS:
                self._send(400, {"message": f"Endpoint {name} not found."}, {"x-amzn-ErrorType": "ValidationError"})
            else:
                self._send(200, {"predictions": [_prediction(VARIANTS[name]) for _ in inputs],
                                 "model_version": f"{name}-model"},
                           {"x-Amzn-Invoked-Production-Variant": "AllTraffic"})

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def two_endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoEndpoints]:
    """news-v3 and news-v4 (and the failing news-v5) on one fake SageMaker Runtime, routed 50/50."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(endpoints := TwoEndpoints("")))
    server.daemon_threads = True
    endpoints.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoints.url)
    monkeypatch.setenv("MODEL_VARIANTS", '{"news-v3": 0.5, "news-v4": 0.5}')
    yield endpoints
    server.shutdown()
    server.server_close()


def _emf_documents(stdout: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [d for d in documents if "_aws" in d]


def _by_endpoint(documents: list[dict[str, Any]], metric: str, **dimensions: str) -> dict[str, float]:
    """Sum of `metric` per `endpoint` dimension over the documents that carry these dimensions."""
    totals: Counter[str] = Counter()
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        if "endpoint" in directive["Dimensions"][0] and metric in document \
                and all(document.get(k) == v for k, v in dimensions.items()):
            values = document[metric] if isinstance(document[metric], list) else [document[metric]]
            totals[document["endpoint"]] += sum(values)
    return dict(totals)


def test_requests_are_split_between_the_variants_and_stored_with_endpoint_and_version(
        client: Client, table: str, two_endpoints: TwoEndpoints, openapi: dict) -> None:
    records = []
    for i in range(40):
        response = post_json(client, "/classify", {"headline": f"Headline {i}"}, headers={"X-Client-Id": f"user-{i}"})
        assert response.status_code == 200
        assert_documented(openapi, "/classify", "POST", response)
        result = body_of(response)
        records.append(body_of(client.http.get(f"/transactions/{result['request_id']}")))
    assert set(two_endpoints.calls) == set(VARIANTS)
    for record in records:
        assert record["model_version"] == f"{record['endpoint_name']}-model"
        assert record["label"] == VARIANTS[record["endpoint_name"]]
        assert record["variant"] == "AllTraffic"
    assert Counter(r["endpoint_name"] for r in records) == two_endpoints.calls


def test_one_client_id_always_gets_the_same_variant(client: Client, table: str, two_endpoints: TwoEndpoints) -> None:
    for client_id in ("user-1", "user-2", "user-3"):
        versions = {body_of(post_json(client, "/classify", {"headline": "Oil prices fall"},
                                      headers={"X-Client-Id": client_id}))["model_version"] for _ in range(8)}
        assert len(versions) == 1


def test_a_batch_goes_to_one_variant(client: Client, table: str, two_endpoints: TwoEndpoints) -> None:
    response = post_json(client, "/classify/batch", {"headlines": ["A", "B", "C"]})
    assert len({r["model_version"] for r in body_of(response)["results"]}) == 1
    assert sum(two_endpoints.calls.values()) == 1


def test_metrics_carry_the_endpoint_dimension(client: Client, table: str, two_endpoints: TwoEndpoints,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MODEL_VARIANTS", json.dumps({name: 1 for name in [*VARIANTS, FAILING]}))
    capsys.readouterr()
    statuses = Counter(post_json(client, "/classify/batch", {"headlines": ["A", "B"]},
                                 headers={"X-Client-Id": f"user-{i}"}).status_code for i in range(30))
    documents = _emf_documents(capsys.readouterr().out)
    calls = two_endpoints.calls
    assert statuses == {200: calls["news-v3"] + calls["news-v4"], 502: calls[FAILING]}
    assert all(calls[name] > 0 for name in [*VARIANTS, FAILING])
    assert _by_endpoint(documents, "Requests", route="/classify/batch") == calls
    assert _by_endpoint(documents, "Errors") == {"news-v3": 0, "news-v4": 0, FAILING: calls[FAILING]}
    assert _by_endpoint(documents, "Predictions", label="Science") == {"news-v3": 2 * calls["news-v3"]}
    assert _by_endpoint(documents, "Predictions", label="Health") == {"news-v4": 2 * calls["news-v4"]}
    assert set(_by_endpoint(documents, "ModelLatency")) == set(VARIANTS)


def test_without_model_variants_no_endpoint_dimension_is_emitted(client: Client, table: str,
                                                                  two_endpoints: TwoEndpoints,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MODEL_VARIANTS")
    capsys.readouterr()
    response = post_json(client, "/classify", {"headline": "Oil"})
    assert response.status_code == 503  # the stage's own ENDPOINT_NAME, which this fake does not serve
    assert two_endpoints.calls == {"news-classifier": 1}
    assert _by_endpoint(_emf_documents(capsys.readouterr().out), "Requests") == {}


def test_health_lists_the_variants(client: Client, two_endpoints: TwoEndpoints, openapi: dict) -> None:
    response = client.http.get("/health/details")
    assert_documented(openapi, "/health/details", "GET", response)
    assert body_of(response)["variants"] == {"news-v3": 0.5, "news-v4": 0.5}


def test_a_bad_variant_config_fails_the_request_without_calling_a_model(client: Client, table: str,
                                                                       two_endpoints: TwoEndpoints,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_VARIANTS", '{"news-v3": -1}')
    response = post_json(client, "/classify", {"headline": "Oil"}, headers={"X-Run-Id": "bad-config"})
    assert (response.status_code, body_of(response)["error"]["code"]) == (500, "internal_error")
    assert sum(two_endpoints.calls.values()) == 0
    (record,) = transactions.transaction_model().scan()  # the request is still on record, as a failure
    assert body_of(response)["error"]["request_ids"] == [record.request_id]
    assert (record.status, record.error_code, record.run_id) == ("error", "internal_error", "bad-config")
    assert json.loads(record.headline) == {"headline": "Oil"}


def test_a_bad_client_id_is_a_documented_400(client: Client, two_endpoints: TwoEndpoints, openapi: dict) -> None:
    response = post_json(client, "/classify", {"headline": "Oil"}, headers={"X-Client-Id": "user 17"})
    assert response.status_code == 400
    assert_documented(openapi, "/classify", "POST", response)
    assert sum(two_endpoints.calls.values()) == 0


def test_the_documented_client_id_pattern_is_the_enforced_one(openapi: dict) -> None:
    pattern = openapi["components"]["parameters"]["ClientId"]["schema"]["pattern"]
    assert pattern == f"^{validation._CLIENT_ID.pattern}$"
