"""The API's one error shape, `{"error": {"code", "message"}}`, and the exceptions that produce it.

A failed classification adds `request_ids` to the error object: its headlines were stored as error transactions.

`ApiError` derives from Chalice's `ChaliceUnhandledError` so Chalice hands it to the middleware instead of
turning it into its own `{"Code", "Message"}` 500; the middleware renders it with `to_response`.
Responses Chalice builds itself (415, 405, unhandled exceptions) are rewritten into the same shape.
"""

from __future__ import annotations

from typing import Any

from chalice.app import ChaliceUnhandledError, Response

# Seconds a client should wait before retrying: throttling clears fast, a cold or missing endpoint does not.
RETRY_AFTER_THROTTLED = 1
RETRY_AFTER_UNAVAILABLE = 5

# Codes of the responses Chalice produces around our views: content-type and method checks, unhandled bugs.
_CHALICE_CODES = {405: "method_not_allowed", 415: "unsupported_media_type"}
INTERNAL_ERROR_MESSAGE = "internal error; the logs hold the details under this request's correlation id"


class ApiError(ChaliceUnhandledError):
    """A request the API answers with an error status; `code` is stable, `message` is for people."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        # A failed classification: the ids of the error transactions stored for its headlines, in input order,
        # so a client can still look them up and a load test can account for every headline it sent.
        self.request_ids: list[str] | None = None

    def to_response(self) -> Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return error_response(self.status, self.code, self.message, headers, self.request_ids)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   request_ids: list[str] | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if request_ids is not None:
        error["request_ids"] = request_ids
    return Response(body={"error": error}, status_code=status, headers=headers or {})


def is_chalice_error(response: Response) -> bool:
    """Chalice's own error bodies are `{"Code": ..., "Message": ...}`."""
    return response.status_code >= 400 and isinstance(response.body, dict) and set(response.body) == {"Code", "Message"}


def from_chalice_error(response: Response) -> Response:
    """The same status in our shape; unhandled-exception details stay in the logs, not in the body."""
    status = response.status_code
    message = str(response.body["Message"])
    if status == 415:
        message += "; send the body as application/json"
    elif status >= 500:
        message = INTERNAL_ERROR_MESSAGE
    headers: dict[str, Any] = {k: v for k, v in response.headers.items() if k.lower() == "allow"}
    code = _CHALICE_CODES.get(status, "internal_error" if status >= 500 else "invalid_request")
    return error_response(status, code, message, headers)


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, code, message)


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)
