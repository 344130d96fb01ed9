"""The SageMaker Runtime client: one InvokeEndpoint per request, failures mapped to API statuses.

The same code talks to AWS and to the local endpoint (`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`). botocore's
standard retry mode retries throttling, 5xx and connection errors; it does not retry `ModelError` (the
model failed on this input: retrying cannot help) or `ModelNotReadyException` (a cold or updating endpoint:
the client is told to come back later with Retry-After). Answers to clients name no endpoint and no AWS error
code; the log line `model_call_failed` holds both.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .config import model_settings
from .errors import RETRY_AFTER_THROTTLED, RETRY_AFTER_UNAVAILABLE, ApiError
from .telemetry import logger

JSON = "application/json"
_THROTTLED = {"ThrottlingException"}
_UNAVAILABLE = {"ModelNotReadyException", "ServiceUnavailable", "InternalFailure", "InternalDependencyException",
                "ValidationError"}  # ValidationError: no such endpoint (yet), e.g. during a deployment
_client_lock = threading.Lock()


class ModelCallError(ApiError):
    """The model gave no usable answer; the transactions of the request are stored with this error code."""


@dataclass(frozen=True)
class Prediction:
    label: str
    scores: dict[str, float]  # label name -> probability; the names come from the model, never from the API

    @property
    def top_score(self) -> float:
        return self.scores[self.label]


@dataclass(frozen=True)
class ModelAnswer:
    predictions: list[Prediction]
    model_version: str
    variant: str | None  # the production variant that answered, when the endpoint says
    latency_ms: float


@functools.cache
def _client(region: str | None, endpoint_url: str | None, connect_timeout: float, read_timeout: float,
            max_attempts: int) -> Any:
    """One client per configuration, created on first use (a lock: boto3 client creation is not thread-safe)."""
    config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                    retries={"mode": "standard", "total_max_attempts": max_attempts})
    with _client_lock:
        return boto3.session.Session().client("sagemaker-runtime", region_name=region, endpoint_url=endpoint_url,
                                              config=config)


def classify(headlines: list[str], endpoint_name: str | None) -> ModelAnswer:
    """Classify all headlines in one InvokeEndpoint call to the endpoint routing chose (None: none configured)."""
    if endpoint_name is None:
        raise ModelCallError(503, "model_unavailable",
                             "no model endpoint is configured (ENDPOINT_NAME or MODEL_VARIANTS)",
                             RETRY_AFTER_UNAVAILABLE)
    settings = model_settings()
    client = _client(settings.region, settings.endpoint_url, settings.connect_timeout, settings.read_timeout,
                     settings.max_attempts)
    started = time.perf_counter()
    try:
        response = client.invoke_endpoint(EndpointName=endpoint_name, ContentType=JSON, Accept=JSON,
                                          Body=json.dumps({"inputs": headlines}))
        body = response["Body"].read()
    except ClientError as exc:
        raise _from_client_error(exc, endpoint_name) from exc
    except BotoCoreError as exc:
        raise _from_transport_error(exc, endpoint_name) from exc
    latency_ms = (time.perf_counter() - started) * 1000
    return _parse_answer(body, len(headlines), response.get("InvokedProductionVariant"), latency_ms)


def _from_client_error(exc: ClientError, endpoint: str) -> ModelCallError:
    code = exc.response.get("Error", {}).get("Code", "Unknown")
    logger.warning("model_call_failed", extra={"endpoint": endpoint, "aws_error": code, "detail": str(exc)})
    if code in _THROTTLED:
        return ModelCallError(429, "model_throttled", "the model endpoint is throttling requests",
                              RETRY_AFTER_THROTTLED)
    if code in _UNAVAILABLE:
        return ModelCallError(503, "model_unavailable", "the model endpoint is not available",
                              RETRY_AFTER_UNAVAILABLE)
    return ModelCallError(502, "model_error", "the model failed on this request")


def _from_transport_error(exc: BotoCoreError, endpoint: str) -> ModelCallError:
    logger.warning("model_call_failed", extra={"endpoint": endpoint, "aws_error": type(exc).__name__,
                                               "detail": str(exc)})
    if isinstance(exc, ReadTimeoutError):
        return ModelCallError(504, "model_timeout", "the model endpoint did not answer in time")
    if isinstance(exc, BotoConnectionError):
        return ModelCallError(503, "model_unavailable", "the model endpoint cannot be reached",
                              RETRY_AFTER_UNAVAILABLE)
    return ModelCallError(502, "model_error", "the call to the model endpoint failed")


def _parse_answer(body: bytes, expected: int, variant: str | None, latency_ms: float) -> ModelAnswer:
    """Check the endpoint's answer: one prediction per headline, each label among its own scores."""
    try:
        payload = json.loads(body)
        predictions = [Prediction(label=str(item["label"]),
                                  scores={str(name): float(p) for name, p in item["scores"].items()})
                       for item in payload["predictions"]]
        model_version = str(payload["model_version"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelCallError(502, "model_error", "the model endpoint answered with an unexpected body") from exc
    if len(predictions) != expected or any(p.label not in p.scores for p in predictions):
        raise ModelCallError(502, "model_error", "the model endpoint answered with an unexpected body")
    return ModelAnswer(predictions, model_version, variant, latency_ms)
