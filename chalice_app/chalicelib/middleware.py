"""The HTTP middleware: every response in our error shape, one log line and the metrics of each request."""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import Request, Response

from chalicelib import telemetry
from chalicelib.errors import ApiError, from_chalice_error, is_chalice_error


def observe_and_shape_errors(event: Request, get_response: Callable[[Request], Response]) -> Response:
    telemetry.start_request(event.path, _correlation_id(event))
    try:
        response = get_response(event)
    except ApiError as error:
        response = error.to_response()
    if is_chalice_error(response):
        response = from_chalice_error(response)
    telemetry.finish_request(event.method, response.status_code, _error_code(response))
    return response


def _correlation_id(event: Request) -> str | None:
    """API Gateway's request id when there is one, else the Lambda invocation's."""
    return event.context.get("requestId") or getattr(event.lambda_context, "aws_request_id", None)


def _error_code(response: Response) -> str | None:
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None
