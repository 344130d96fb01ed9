"""Request parsing with one clear 4xx per way a request can be wrong; nothing here can raise a 500.

The body is decoded from the raw bytes (never Chalice's `json_body`), so invalid UTF-8 and invalid JSON
get our error shape. Limits are documented in `openapi.yaml`; a test keeps the two in step.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib.config import reject_constant
from chalicelib.errors import bad_request, not_found, too_large
from chalicelib.routing import Client

MAX_HEADLINE_CHARS = 1000
MAX_BATCH_HEADLINES = 64
# Bytes of a request body, measured before anything parses it. The largest valid body, 64 headlines of 1000
# characters each written as a 12-byte JSON escape pair ("\ud83d\ude00"), is 768,000 bytes plus its syntax:
# 1 MiB leaves room for pretty-printing and refuses what no valid request needs before json.loads reads it.
MAX_BODY_BYTES = 1024 * 1024
MAX_LABEL_CHARS = 100
MAX_LISTED_NAMES = 5  # unknown fields or parameters an error message names, each cut to MAX_NAME_CHARS
MAX_NAME_CHARS = 40
DEFAULT_RECENT_LIMIT = 20
MAX_RECENT_LIMIT = 100
DEFAULT_REVIEW_LIMIT = 20  # entries (headlines) of the review queue
MAX_REVIEW_LIMIT = 100
DEFAULT_REVIEW_DAYS = 7  # UTC days of the review queue, today included
MAX_REVIEW_DAYS = 30
MAX_REVIEW_IDS = 100  # request ids one review label may name
RUN_ID_HEADER = "x-run-id"
_RUN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CLIENT_ID_HEADER = "x-client-id"
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII: any opaque id a client may already have
_LIMIT = re.compile(r"[0-9]{1,4}")  # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
# A headline or label needs one character that is not whitespace. The class lists every code point that Python
# (str.isspace), ECMAScript and Unicode count as whitespace, so openapi.yaml's `pattern` (this same text) means
# the same to every regex engine, where a shorthand such as \S does not (U+001C, U+0085, U+FEFF).
_NOT_BLANK = re.compile(r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]")


def body_size(raw: bytes | str | None) -> None:
    """A body over MAX_BODY_BYTES is a 413, decided by its length alone (nothing decodes or parses it)."""
    size = len(raw or b"")
    if size > MAX_BODY_BYTES:
        raise too_large(f"the request body has {size:,} bytes; the limit is {MAX_BODY_BYTES:,}")


def json_object(raw: bytes | str | None) -> dict[str, Any]:
    """The body as a JSON object; empty bodies, bad UTF-8, bad JSON and non-objects are 400s."""
    if not raw:
        raise bad_request("the request body is empty; send a JSON object", code="invalid_json")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise bad_request(f"the request body is not valid UTF-8 ({exc.reason} at byte {exc.start})",
                          code="invalid_json") from exc
    try:
        body = json.loads(text, parse_constant=reject_constant)
    except ValueError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}", code="invalid_json") from exc
    except RecursionError as exc:
        raise bad_request("the request body nests too deeply", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, not {_json_type(body)}")
    return body


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _exact_fields(body: Mapping[str, Any], expected: str, where: str = "the request body") -> Any:
    """The one field a body may hold; missing or extra fields are 400s (typos must not pass silently)."""
    extra = sorted(set(body) - {expected})
    if extra:
        raise bad_request(f"{where} has unknown field(s) {_names(extra)}; expected only {expected!r}")
    if expected not in body:
        raise bad_request(f"{where} has no {expected!r} field")
    return body[expected]


def unicode_text(value: str, where: str) -> str:
    """Refuse what JSON allows but Unicode does not: a lone UTF-16 surrogate ("\\ud800") cannot be encoded, so
    no tokenizer, table or log line can take it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad_request(f"{where} is not valid Unicode text: it holds the lone surrogate "
                          f"U+{ord(value[exc.start]):04X} at character {exc.start}; send UTF-8 text") from exc
    return value


def _names(names: list[str]) -> str:
    """Unknown names as an error message lists them: a few, each cut short, so the echo stays small."""
    shown = ", ".join(repr(name[:MAX_NAME_CHARS]) for name in names[:MAX_LISTED_NAMES])
    more = len(names) - MAX_LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def headline(value: Any, where: str = "'headline'") -> str:
    if not isinstance(value, str):
        raise bad_request(f"{where} must be a string, not {_json_type(value)}")
    unicode_text(value, where)
    if not _NOT_BLANK.search(value):
        raise bad_request(f"{where} is empty")
    if len(value) > MAX_HEADLINE_CHARS:
        raise too_large(f"{where} has {len(value)} characters; the limit is {MAX_HEADLINE_CHARS}")
    return value


def classify_request(body: dict[str, Any]) -> str:
    """`{"headline": ...}`, or the original project's `{"query": {"headline": ...}}`."""
    if "query" in body:
        query = _exact_fields(body, "query")
        if not isinstance(query, dict):
            raise bad_request(f"'query' must be an object, not {_json_type(query)}")
        return headline(_exact_fields(query, "headline", where="'query'"))
    return headline(_exact_fields(body, "headline"))


def batch_request(body: dict[str, Any]) -> list[str]:
    headlines = _exact_fields(body, "headlines")
    if not isinstance(headlines, list):
        raise bad_request(f"'headlines' must be an array, not {_json_type(headlines)}")
    if not headlines:
        raise bad_request("'headlines' is empty; send 1 to 64 headlines")
    if len(headlines) > MAX_BATCH_HEADLINES:
        raise too_large(f"'headlines' has {len(headlines)} items; the limit is {MAX_BATCH_HEADLINES}")
    return [headline(value, where=f"'headlines'[{i}]") for i, value in enumerate(headlines)]


def feedback_request(body: dict[str, Any]) -> str:
    return _label(_exact_fields(body, "label"))


def _label(label: Any) -> str:
    if not isinstance(label, str) or not _NOT_BLANK.search(label):
        raise bad_request("'label' must be a non-empty string")
    unicode_text(label, "'label'")
    if len(label) > MAX_LABEL_CHARS:
        raise too_large(f"'label' has {len(label)} characters; the limit is {MAX_LABEL_CHARS}")
    return label


def recent_query(params: Mapping[str, str] | None) -> int:
    """`?limit=N` of the recent-traffic route: 1 to MAX_RECENT_LIMIT, DEFAULT_RECENT_LIMIT when absent."""
    params = _only(params, ("limit",))
    return _whole_number(params, "limit", MAX_RECENT_LIMIT, DEFAULT_RECENT_LIMIT)


def review_query(params: Mapping[str, str] | None) -> tuple[int, int]:
    """`?limit=N&days=D` of the review queue: (limit, days), each from 1 to its maximum, its default when absent."""
    params = _only(params, ("limit", "days"))
    return (_whole_number(params, "limit", MAX_REVIEW_LIMIT, DEFAULT_REVIEW_LIMIT),
            _whole_number(params, "days", MAX_REVIEW_DAYS, DEFAULT_REVIEW_DAYS))


def _only(params: Mapping[str, str] | None, names: tuple[str, ...]) -> Mapping[str, str]:
    params = params or {}
    extra = sorted(set(params) - set(names))
    if extra:
        expected = " and ".join(repr(name) for name in names)
        raise bad_request(f"unknown query parameter(s) {_names(extra)}; expected only {expected}")
    return params


def _whole_number(params: Mapping[str, str], name: str, maximum: int, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise bad_request(f"{name!r} must be a whole number from 1 to {maximum}, not {raw[:20]!r}")
    return int(raw)


def review_labels_request(body: dict[str, Any]) -> tuple[str, list[str]]:
    """`{"label": ..., "request_ids": [...]}`: the label and the ids (1 to MAX_REVIEW_IDS, repeats dropped)."""
    extra = sorted(set(body) - {"label", "request_ids"})
    if extra:
        raise bad_request(f"the request body has unknown field(s) {_names(extra)}; expected 'label' and "
                          "'request_ids'")
    missing = [name for name in ("label", "request_ids") if name not in body]
    if missing:
        raise bad_request(f"the request body has no {_names(missing)} field")
    ids = body["request_ids"]
    if not isinstance(ids, list):
        raise bad_request(f"'request_ids' must be an array, not {_json_type(ids)}")
    if not ids:
        raise bad_request(f"'request_ids' is empty; send 1 to {MAX_REVIEW_IDS} request ids")
    if len(ids) > MAX_REVIEW_IDS:
        raise too_large(f"'request_ids' has {len(ids)} items; the limit is {MAX_REVIEW_IDS}")
    for i, value in enumerate(ids):
        if not isinstance(value, str) or not _is_request_id(value):
            shown = repr(value[:80]) if isinstance(value, str) else _json_type(value)
            raise bad_request(f"'request_ids'[{i}] is not a request id (a UUID as the API returns it): {shown}")
    return _label(body["label"]), list(dict.fromkeys(ids))


def request_id(value: str) -> str:
    """Ids are canonical UUIDs; anything else cannot exist, so it is a 404 without a table read."""
    if not _is_request_id(value):
        raise not_found(f"no transaction {value[:80]!r}")
    return value


def _is_request_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def run_id(headers: Mapping[str, str]) -> str | None:
    """The optional load-test run a request belongs to (reconciliation counts records per run)."""
    value = headers.get(RUN_ID_HEADER)
    if value is None:
        return None
    if not _RUN_ID.fullmatch(value):
        raise bad_request("X-Run-Id must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    return value


def client(headers: Mapping[str, str], context: Mapping[str, Any]) -> Client:
    """Who sent the request, for sticky A/B routing: X-Client-Id and the API key (API Gateway's, else the header)."""
    client_id = headers.get(CLIENT_ID_HEADER)
    if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
        raise bad_request("X-Client-Id must be 1-128 visible ASCII characters")
    identity = context.get("identity") or {}
    return Client(client_id=client_id, api_key=identity.get("apiKey") or headers.get("x-api-key"))
