"""CloudWatch telemetry: Powertools JSON logs and Embedded Metric Format metrics, one request at a time.

Each request gets its own EMF provider, because Powertools' `Metrics` shares state across instances and `chalice
local` serves on several threads; a per-value dimension needs one EMF document per value. Client IP addresses
are never logged.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from .config import SERVICE_NAME, metrics_namespace

# ASCII JSON (Powertools writes UTF-8 by default): a log line holding any text, a lone surrogate included, can
# always be written, so the `transaction_unsaved` fallback cannot fail on the text it is saving.
logger = Logger(service=SERVICE_NAME, json_serializer=partial(json.dumps, separators=(",", ":"), default=str))


@dataclass
class _RequestMetrics:
    route: str
    started: float = field(default_factory=time.perf_counter)
    endpoint: str | None = None
    model_latency_ms: float | None = None
    predictions: Counter[str] = field(default_factory=Counter)
    top_scores: list[float] = field(default_factory=list)
    uncertain: int = 0
    unsaved: int = 0


_current: ContextVar[_RequestMetrics | None] = ContextVar("request_metrics", default=None)


def start_request(route: str, correlation_id: str | None) -> None:
    _current.set(_RequestMetrics(route))
    logger.thread_safe_append_keys(correlation_id=correlation_id, route=route)


def bind_request_ids(request_ids: Sequence[str]) -> None:
    """Put the transaction id(s) on every later log line of this request."""
    if len(request_ids) == 1:
        logger.thread_safe_append_keys(request_id=request_ids[0])
    else:
        logger.thread_safe_append_keys(request_ids=list(request_ids))


def record_variant(endpoint: str | None) -> None:
    """The A/B variant (endpoint) routing chose for this request: its metrics are also flushed per endpoint."""
    current = _current.get()
    if current is not None:
        current.endpoint = endpoint


def record_model_call(latency_ms: float, labels: Sequence[str], top_scores: Sequence[float]) -> None:
    current = _current.get()
    if current is not None:
        current.model_latency_ms = latency_ms
        current.predictions.update(labels)
        current.top_scores.extend(top_scores)


def record_uncertain(count: int) -> None:
    """Results flagged uncertain (top score below UNCERTAIN_BELOW): `UncertainPredictions`, 0 included."""
    current = _current.get()
    if current is not None:
        current.uncertain += count


def record_unsaved(count: int) -> None:
    current = _current.get()
    if current is not None:
        current.unsaved += count


def finish_request(method: str, status: int, error_code: str | None) -> None:
    """Log one line about the request and flush its metrics."""
    current = _current.get()
    if current is None:
        return
    latency_ms = (time.perf_counter() - current.started) * 1000
    fields = {"method": method, "status": status, "latency_ms": round(latency_ms, 2)}
    if error_code:
        fields["error_code"] = error_code
    (logger.warning if status >= 500 else logger.info)("request", extra=fields)
    _flush(current, latency_ms, error_code)
    _current.set(None)
    logger.thread_safe_clear_keys()


def _provider(route: str, **dimensions: str) -> AmazonCloudWatchEMFProvider:
    return _emf_document(route=route, **dimensions)


def _emf_document(**dimensions: str) -> AmazonCloudWatchEMFProvider:
    """A fresh EMF provider (one document) with these dimensions besides `service`."""
    provider = AmazonCloudWatchEMFProvider(namespace=metrics_namespace(), service=SERVICE_NAME)
    for name, value in dimensions.items():
        provider.add_dimension(name=name, value=value)
    return provider


def _flush(current: _RequestMetrics, latency_ms: float, error_code: str | None) -> None:
    metrics = _provider(current.route)
    _add_request_metrics(metrics, current, latency_ms)
    if current.unsaved:
        metrics.add_metric(name="UnsavedTransactions", unit=MetricUnit.Count, value=current.unsaved)
    metrics.flush_metrics()
    if error_code:
        _flush_count(_provider(current.route, code=error_code), "Errors", 1)
    for label, count in current.predictions.items():
        _flush_count(_provider(current.route, label=label), "Predictions", count)
    if current.endpoint is not None:
        _flush_by_endpoint(current, current.endpoint, latency_ms, error_code)


def _flush_by_endpoint(current: _RequestMetrics, endpoint: str, latency_ms: float, error_code: str | None) -> None:
    """The A/B view: the same request metrics under the endpoint dimension, errors without their code."""
    metrics = _provider(current.route, endpoint=endpoint)
    _add_request_metrics(metrics, current, latency_ms)
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1 if error_code else 0)
    metrics.flush_metrics()
    for label, count in current.predictions.items():
        _flush_count(_provider(current.route, endpoint=endpoint, label=label), "Predictions", count)


def _add_request_metrics(metrics: AmazonCloudWatchEMFProvider, current: _RequestMetrics, latency_ms: float) -> None:
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
    if current.model_latency_ms is not None:
        metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=current.model_latency_ms)
        metrics.add_metric(name="UncertainPredictions", unit=MetricUnit.Count, value=current.uncertain)
    for score in current.top_scores:
        metrics.add_metric(name="TopScore", unit=MetricUnit.NoUnit, value=score)


def _flush_count(metrics: AmazonCloudWatchEMFProvider, name: str, count: int) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    metrics.flush_metrics()


def flush_job_metrics(job: str, values: Mapping[str, float], unit: MetricUnit = MetricUnit.NoUnit,
                      **dimensions: str) -> None:
    """One EMF document of a scheduled job (no request, no route): dimensions service, job and `dimensions`."""
    metrics = _emf_document(job=job, **dimensions)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=unit, value=value)
    metrics.flush_metrics()
