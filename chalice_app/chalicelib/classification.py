"""Classify headlines: one model call, one stored transaction per headline (also when the call fails), and one
transaction for a classification request answered with an error before that (refused input, a broken setting)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import callers, model_client, routing, telemetry, transactions, validation
from .config import model_settings, score_settings
from .errors import ApiError
from .model_client import ModelCallError
from .routing import Client
from .transactions import Outcome


def classify(headlines: Sequence[str], run_id: str | None, client: Client,
             client_key_id: str | None = None) -> list[dict[str, Any]]:
    """Results in input order; a failed model call stores error transactions, then raises its ApiError.

    All headlines of a request go to one endpoint, chosen by the A/B routing; its name is stored on each
    transaction and, while MODEL_VARIANTS is set, is the `endpoint` dimension of the request's metrics.
    """
    started = time.perf_counter()
    created_at = dt.datetime.now(dt.UTC)
    request_ids = [transactions.new_request_id() for _ in headlines]
    telemetry.bind_request_ids(request_ids)
    settings = model_settings()
    uncertain_below = score_settings().uncertain_below
    endpoint_name = routing.route(settings, client)
    if settings.variants:  # an A/B test: the request's metrics per variant too
        telemetry.record_variant(endpoint_name)
    try:
        answer = model_client.classify(list(headlines), endpoint_name)
    except ModelCallError as error:
        failed = [Outcome(rid, headline, _ms_since(started), error_code=error.code)
                  for rid, headline in zip(request_ids, headlines, strict=True)]
        transactions.save([transactions.build_record(o, created_at, endpoint_name, run_id, client_key_id)
                           for o in failed])
        error.request_ids = request_ids
        raise
    latency_ms = _ms_since(started)
    telemetry.record_model_call(answer.latency_ms, [p.label for p in answer.predictions],
                                [p.top_score for p in answer.predictions])
    uncertain = [p.top_score < uncertain_below for p in answer.predictions]
    telemetry.record_uncertain(sum(uncertain))
    outcomes = [Outcome(rid, headline, latency_ms, p.label, p.scores, answer.model_version, answer.variant,
                        answer.latency_ms, uncertain=flag)
                for rid, headline, p, flag in zip(request_ids, headlines, answer.predictions, uncertain, strict=True)]
    transactions.save([transactions.build_record(o, created_at, endpoint_name, run_id, client_key_id)
                       for o in outcomes])
    return [_result(o) for o in outcomes]


def record_failed_request(raw_body: bytes | None, headers: Mapping[str, str], context: Mapping[str, Any],
                          status: int, error_code: str, started: float) -> str:
    """Store one transaction for a classification request that failed before its headlines were recorded.

    Its `headline` is the start of the body as received (invalid UTF-8 replaced), so the record shows what was
    sent; the status is `rejected` for a 4xx, `error` otherwise. Returns the new request id.
    """
    request_id = transactions.new_request_id()
    telemetry.bind_request_ids([request_id])
    try:
        run_id = validation.run_id(headers)
    except ApiError:
        run_id = None  # the header itself may be what was refused
    try:
        client = validation.client(headers, context)
    except ApiError:
        client = Client()  # X-Client-Id itself may be what was refused: the API key id alone then
    try:
        client_key_id = callers.caller(client, context).key_id
    except ApiError:
        client_key_id = None  # no key id where one is required: that refusal is what this record keeps
    # A character is at most 4 bytes, so this many bytes hold the excerpt: a body refused for its size is not
    # decoded whole.
    head = (raw_body or b"")[:4 * validation.MAX_HEADLINE_CHARS]
    excerpt = head.decode("utf-8", errors="replace")[:validation.MAX_HEADLINE_CHARS]
    outcome = Outcome(request_id, excerpt, _ms_since(started), error_code=error_code, rejected=400 <= status < 500)
    transactions.save([transactions.build_record(outcome, dt.datetime.now(dt.UTC), None, run_id, client_key_id)])
    return request_id


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _result(outcome: Outcome) -> dict[str, Any]:
    return {"request_id": outcome.request_id, "label": outcome.label, "scores": outcome.scores,
            "uncertain": outcome.uncertain, "model_version": outcome.model_version,
            "latency_ms": round(outcome.latency_ms, 3)}
