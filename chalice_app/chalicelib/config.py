"""The API's settings, read from environment variables on every use.

Chalice stages set these variables (`.chalice/config.json`); the test client sets them only while a request
runs, so nothing may be read at import time. Reading a handful of variables per request costs microseconds.

Time budget: API Gateway gives up after 29 s. A model call takes at most
MODEL_MAX_ATTEMPTS x (connect + read timeout) plus botocore's backoff (2 x 9 s + ~2 s by default), and the
table write at most (1 + TABLE_MAX_RETRIES) x (connect + read timeout) (3 x 2 s), so the API answers itself,
with a 504 or a logged `transaction_unsaved`, before the gateway cuts it off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SERVICE_NAME = "news-classifier-api"


class ConfigError(RuntimeError):
    """An environment variable holds a value the API cannot use."""


def _optional(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _seconds(name: str, default: float) -> float:
    raw = _optional(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from exc
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value


def _count(name: str, default: int, minimum: int) -> int:
    raw = _optional(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:  # isdigit alone accepts "²"
        raise ConfigError(f"{name}={raw!r} must be a whole number >= {minimum}")
    return int(raw)


@dataclass(frozen=True)
class ModelSettings:
    """Where and how to call the SageMaker endpoint; also the cache key of its client."""

    endpoint_name: str | None
    region: str | None
    endpoint_url: str | None  # AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: unset on AWS, the local endpoint offline
    connect_timeout: float
    read_timeout: float
    max_attempts: int


@dataclass(frozen=True)
class TableSettings:
    """Where and how to write the transaction log; also decides when the PynamoDB model is re-bound."""

    table_name: str | None
    region: str | None
    endpoint_url: str | None  # AWS_ENDPOINT_URL_DYNAMODB: unset on AWS, moto's server offline
    connect_timeout: float
    read_timeout: float
    max_retries: int
    ttl_days: int


def _region() -> str | None:
    return _optional("AWS_REGION") or _optional("AWS_DEFAULT_REGION")


def model_settings() -> ModelSettings:
    return ModelSettings(
        endpoint_name=_optional("ENDPOINT_NAME"),
        region=_region(),
        endpoint_url=_optional("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"),
        connect_timeout=_seconds("MODEL_CONNECT_TIMEOUT_SECONDS", 1.0),
        read_timeout=_seconds("MODEL_READ_TIMEOUT_SECONDS", 8.0),
        max_attempts=_count("MODEL_MAX_ATTEMPTS", 2, minimum=1),
    )


def table_settings() -> TableSettings:
    return TableSettings(
        table_name=_optional("TABLE_NAME"),
        region=_region(),
        endpoint_url=_optional("AWS_ENDPOINT_URL_DYNAMODB"),
        connect_timeout=_seconds("TABLE_CONNECT_TIMEOUT_SECONDS", 1.0),
        read_timeout=_seconds("TABLE_READ_TIMEOUT_SECONDS", 1.0),
        max_retries=_count("TABLE_MAX_RETRIES", 2, minimum=0),
        ttl_days=_count("TRANSACTION_TTL_DAYS", 90, minimum=1),
    )


def metrics_namespace() -> str:
    """Powertools' own variable, so the same setting works for every Powertools utility."""
    return _optional("POWERTOOLS_METRICS_NAMESPACE") or "NewsClassifier"


def api_key_required() -> bool:
    """API_KEY_REQUIRED=true (the AWS stages): API Gateway rejects data routes without a usage plan's key.

    The one setting read at import: Chalice builds the routes when it imports app.py, after setting the stage's
    variables (`chalice local`, `chalice package`).
    """
    return _optional("API_KEY_REQUIRED") == "true"


def configuration_status() -> dict[str, object]:
    """What /health reports: which endpoint and table the API would use, without calling either."""
    endpoint, table = model_settings().endpoint_name, table_settings().table_name
    return {"status": "ok",
            "endpoint": {"name": endpoint, "configured": endpoint is not None},
            "table": {"name": table, "configured": table is not None}}
