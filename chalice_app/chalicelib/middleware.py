"""The HTTP middleware: bodies over the size limit refused before anything parses them, every response in our error
shape, one log line and the metrics of each request, and a transaction for every classification request that
failed without one."""

from __future__ import annotations

import time
from collections.abc import Callable

from chalice.app import Request, Response

from . import classification, telemetry, validation
from .config import ConfigError
from .errors import ApiError, from_chalice_error, is_chalice_error

CLASSIFY_PATHS = frozenset({"/classify", "/classify/batch"})


def observe_and_shape_errors(event: Request, get_response: Callable[[Request], Response]) -> Response:
    started = time.perf_counter()
    telemetry.start_request(event.path, _correlation_id(event))
    try:
        validation.body_size(event.raw_body)  # measured before any route or Chalice itself parses it
        response = get_response(event)
    except ApiError as error:
        response = error.to_response()
    if is_chalice_error(response):
        response = from_chalice_error(response)
    if event.method == "POST" and event.path in CLASSIFY_PATHS:
        _record_failure(event, response, started)
    telemetry.finish_request(event.method, response.status_code, _error_code(response))
    return response


def _record_failure(event: Request, response: Response, started: float) -> None:
    """A classification error that names no transaction stores one and names it (a model failure already has)."""
    error = response.body.get("error") if isinstance(response.body, dict) else None
    if response.status_code < 400 or not isinstance(error, dict) or "request_ids" in error:
        return
    try:
        error["request_ids"] = [classification.record_failed_request(
            event.raw_body, event.headers, event.context, response.status_code, str(error.get("code")), started)]
    except ConfigError:  # a broken table setting: no record can be built; the answer must still go out
        telemetry.logger.exception("transaction_not_recorded")


def _correlation_id(event: Request) -> str | None:
    """API Gateway's request id when there is one, else the Lambda invocation's."""
    return event.context.get("requestId") or getattr(event.lambda_context, "aws_request_id", None)


def _error_code(response: Response) -> str | None:
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None
