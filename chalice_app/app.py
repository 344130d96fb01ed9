"""The news classifier's HTTP API and its scheduled jobs: routes only; the logic lives in `chalicelib/`
(see openapi.yaml)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalice import Chalice, Rate, Response
from chalice.app import CloudWatchEvent
from chalicelib import callers, classification, console, drift_monitor, recent_traffic, review, transactions, validation
from chalicelib.config import api_key_required, configuration_status
from chalicelib.middleware import observe_and_shape_errors
from chalicelib.routing import Client

app = Chalice(app_name="news-classifier-api")
app.register_middleware(observe_and_shape_errors, "http")
KEYED = api_key_required()  # every route but /health and the console's static files (false on the local stage)


def _client_and_caller() -> tuple[Client, callers.Caller]:
    """Who is asking, before what they sent is read: a request without an identity is a 403 whatever its body."""
    request = app.current_request
    client = validation.client(request.headers, request.context)
    return client, callers.caller(client, request.context)


@app.route("/classify", methods=["POST"], api_key_required=KEYED)
def classify() -> dict[str, Any]:
    request = app.current_request
    client, caller = _client_and_caller()
    headline = validation.classify_request(validation.json_object(request.raw_body))
    return classification.classify([headline], validation.run_id(request.headers), client, caller.key_id)[0]


@app.route("/classify/batch", methods=["POST"], api_key_required=KEYED)
def classify_batch() -> dict[str, Any]:
    request = app.current_request
    client, caller = _client_and_caller()
    headlines = validation.batch_request(validation.json_object(request.raw_body))
    return {"results": classification.classify(headlines, validation.run_id(request.headers), client, caller.key_id)}


@app.route("/transactions", methods=["GET"], api_key_required=KEYED)
def recent_transactions() -> dict[str, Any]:
    return recent_traffic.recent(validation.recent_query(app.current_request.query_params), _client_and_caller()[1])


@app.route("/transactions/{request_id}", methods=["GET"], api_key_required=KEYED)
def get_transaction(request_id: str) -> dict[str, Any]:
    return transactions.find_for(_client_and_caller()[1], validation.request_id(request_id)).to_simple_dict()


@app.route("/transactions/{request_id}/feedback", methods=["POST"], api_key_required=KEYED)
def give_feedback(request_id: str) -> dict[str, Any]:
    caller = _client_and_caller()[1]
    request_id = validation.request_id(request_id)
    label = validation.feedback_request(validation.json_object(app.current_request.raw_body))
    return transactions.record_feedback(caller, request_id, label).to_simple_dict()


@app.route("/review", methods=["GET"], api_key_required=KEYED)
def review_queue() -> dict[str, Any]:
    """Operators only: the uncertain answers not yet labelled, one entry per headline, smallest margin first."""
    _client_and_caller()[1].require_operator()
    limit, days = validation.review_query(app.current_request.query_params)
    return review.queue(days, limit, dt.datetime.now(dt.UTC))


@app.route("/review/labels", methods=["POST"], api_key_required=KEYED)
def label_reviewed() -> dict[str, Any]:
    """Operators only: one label for every request id of a review entry, stored as feedback with source review."""
    caller = _client_and_caller()[1]
    caller.require_operator()
    label, request_ids = validation.review_labels_request(validation.json_object(app.current_request.raw_body))
    return review.label(caller, label, request_ids)


@app.route("/health", methods=["GET"])
def health() -> dict[str, object]:
    """Open to anyone, so it says only that the API is up; operators read the wiring at /health/details."""
    return {"status": "ok"}


@app.route("/health/details", methods=["GET"], api_key_required=KEYED)
def health_details() -> dict[str, object]:
    _client_and_caller()[1].require_operator()
    return configuration_status()


@app.route("/", methods=["GET"])
def console_page() -> Response:
    return console.asset(console.PAGE)


@app.route("/console/{name}", methods=["GET"])
def console_asset(name: str) -> Response:
    return console.asset(name)


@app.schedule(Rate(1, unit=Rate.HOURS))
def monitor_drift(event: CloudWatchEvent) -> dict[str, Any]:
    """Drift of the last window of traffic against each served model's baseline (chalicelib/drift_monitor.py)."""
    return drift_monitor.run(dt.datetime.now(dt.UTC)).to_dict()
