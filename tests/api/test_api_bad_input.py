"""Every way a request can be wrong gets its documented 4xx in our error shape, before the model is called;
a refused classification request still leaves one `rejected` transaction, named in the error."""

from __future__ import annotations

import json
import uuid

import pytest
from chalice.test import Client
from chalicelib import transactions, validation
from chalicelib.validation import MAX_BATCH_HEADLINES, MAX_BODY_BYTES, MAX_HEADLINE_CHARS

from tests.support.api_testing import assert_documented, body_of

JSON = {"Content-Type": "application/json"}
TEN_KB = "x" * 10_000
FEEDBACK = "/transactions/{request_id}/feedback"


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


# (case, route, body bytes, headers, status, code)
BAD_REQUESTS = [
    ("empty body", "/classify", b"", JSON, 400, "invalid_json"),
    ("empty headline", "/classify", _json({"headline": ""}), JSON, 400, "invalid_request"),
    ("whitespace headline", "/classify", _json({"headline": " \t\n "}), JSON, 400, "invalid_request"),
    ("10 kB headline", "/classify", _json({"headline": TEN_KB}), JSON, 413, "too_large"),
    ("headline one over the limit", "/classify", _json({"headline": "x" * (MAX_HEADLINE_CHARS + 1)}), JSON, 413,
     "too_large"),
    ("number headline", "/classify", _json({"headline": 42}), JSON, 400, "invalid_request"),
    ("list headline", "/classify", _json({"headline": ["a", "b"]}), JSON, 400, "invalid_request"),
    ("null headline", "/classify", _json({"headline": None}), JSON, 400, "invalid_request"),
    ("missing headline", "/classify", _json({}), JSON, 400, "invalid_request"),
    ("extra field", "/classify", _json({"headline": "Oil falls", "lang": "en"}), JSON, 400, "invalid_request"),
    ("misspelt field", "/classify", _json({"headlines": "Oil falls"}), JSON, 400, "invalid_request"),
    ("body is a list", "/classify", _json(["Oil falls"]), JSON, 400, "invalid_request"),
    ("body is a string", "/classify", _json("Oil falls"), JSON, 400, "invalid_request"),
    ("body is null", "/classify", b"null", JSON, 400, "invalid_request"),
    ("invalid UTF-8", "/classify", b'{"headline": "caf\xe9 \xff"}', JSON, 400, "invalid_json"),
    ("invalid JSON", "/classify", b'{"headline": "Oil falls"', JSON, 400, "invalid_json"),
    ("NaN", "/classify", b'{"headline": NaN}', JSON, 400, "invalid_json"),
    ("deeply nested", "/classify", b"[" * 100_000 + b"]" * 100_000, JSON, 400, "invalid_json"),
    ("text/plain", "/classify", _json({"headline": "Oil falls"}), {"Content-Type": "text/plain"}, 415,
     "unsupported_media_type"),
    ("form encoded", "/classify", b"headline=Oil+falls", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "unsupported_media_type"),
    ("binary type", "/classify", b"\x00\x01", {"Content-Type": "application/octet-stream"}, 415,
     "unsupported_media_type"),
    ("legacy query not an object", "/classify", _json({"query": "Oil falls"}), JSON, 400, "invalid_request"),
    ("legacy query extra field", "/classify", _json({"query": {"headline": "Oil", "x": 1}}), JSON, 400,
     "invalid_request"),
    ("legacy and new fields", "/classify", _json({"query": {"headline": "Oil"}, "headline": "Oil"}), JSON, 400,
     "invalid_request"),
    ("bad run id", "/classify", _json({"headline": "Oil falls"}), {**JSON, "X-Run-Id": "a b"}, 400,
     "invalid_request"),
    ("batch of 0", "/classify/batch", _json({"headlines": []}), JSON, 400, "invalid_request"),
    ("batch of 65", "/classify/batch", _json({"headlines": ["Oil falls"] * (MAX_BATCH_HEADLINES + 1)}), JSON, 413,
     "too_large"),
    ("batch not a list", "/classify/batch", _json({"headlines": "Oil falls"}), JSON, 400, "invalid_request"),
    ("batch with a number", "/classify/batch", _json({"headlines": ["Oil falls", 7]}), JSON, 400,
     "invalid_request"),
    ("batch with an empty headline", "/classify/batch", _json({"headlines": ["Oil falls", ""]}), JSON, 400,
     "invalid_request"),
    ("batch with a 10 kB headline", "/classify/batch", _json({"headlines": [TEN_KB]}), JSON, 413, "too_large"),
    ("batch invalid JSON", "/classify/batch", b"{", JSON, 400, "invalid_json"),
    ("feedback without label", FEEDBACK, _json({}), JSON, 400, "invalid_request"),
    ("feedback label a number", FEEDBACK, _json({"label": 3}), JSON, 400, "invalid_request"),
    ("feedback label too long", FEEDBACK, _json({"label": "B" * 101}), JSON, 413, "too_large"),
    ("feedback invalid UTF-8", FEEDBACK, b'{"label": "\xff"}', JSON, 400, "invalid_json"),
    ("feedback text/plain", FEEDBACK, _json({"label": "Business"}), {"Content-Type": "text/plain"}, 415,
     "unsupported_media_type"),
]


@pytest.fixture
def guarded(client: Client, table: str, fake_endpoint) -> Client:
    """The app with a table and an endpoint that must never be reached by a bad request."""
    return client


@pytest.mark.parametrize(("route", "body", "headers", "status", "code"),
                         [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_get_the_documented_4xx(guarded: Client, fake_endpoint, openapi: dict, route: str,
                                             body: bytes, headers: dict[str, str], status: int, code: str) -> None:
    path = route.format(request_id=uuid.uuid4())
    response = guarded.http.post(path, body=body, headers=headers)
    assert (response.status_code, body_of(response)["error"]["code"]) == (status, code)
    assert body_of(response)["error"]["message"]
    assert_documented(openapi, route, "POST", response)
    assert fake_endpoint.calls == 0
    if route == FEEDBACK:  # feedback changes an existing transaction; a refused one changes nothing
        assert transactions.transaction_model().count() == 0
        assert "request_ids" not in body_of(response)["error"]
        return
    (record,) = transactions.transaction_model().scan()
    assert body_of(response)["error"]["request_ids"] == [record.request_id]
    assert (record.status, record.error_code, record.label, record.endpoint_name) == ("rejected", code, None, None)
    assert record.headline == body.decode("utf-8", errors="replace")[:MAX_HEADLINE_CHARS]


def test_a_wrong_method_is_405_in_our_shape(guarded: Client) -> None:
    response = guarded.http.get("/classify")
    assert response.status_code == 405
    assert body_of(response)["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


OVER_THE_LIMIT = MAX_BODY_BYTES + 1


@pytest.mark.parametrize(("route", "body"), [
    ("/classify", b'{"headline": "Oil falls"}' + b" " * MAX_BODY_BYTES),  # valid JSON, padded: parsed, it passes
    ("/classify", b"{" * OVER_THE_LIMIT),  # parsed, it is a 400
    ("/classify/batch", _json({"headlines": ["Oil falls"] * (OVER_THE_LIMIT // 10)})),
    (FEEDBACK, b'{"label": "Business"}' + b"\n" * MAX_BODY_BYTES),
], ids=["padded valid headline", "unparseable", "batch", "feedback"])
def test_a_body_over_the_limit_is_refused_by_its_size_before_anything_parses_it(
        guarded: Client, fake_endpoint, openapi: dict, monkeypatch: pytest.MonkeyPatch, route: str,
        body: bytes) -> None:
    parsed: list[object] = []
    monkeypatch.setattr(validation, "json_object", parsed.append)  # the one reader of request bodies
    assert len(body) > MAX_BODY_BYTES
    response = guarded.http.post(route.format(request_id=uuid.uuid4()), body=body, headers=JSON)
    assert (response.status_code, body_of(response)["error"]["code"]) == (413, "too_large")
    assert f"the limit is {MAX_BODY_BYTES:,}" in body_of(response)["error"]["message"]
    assert_documented(openapi, route, "POST", response)
    assert parsed == [] and fake_endpoint.calls == 0
    if route == FEEDBACK:
        assert transactions.transaction_model().count() == 0
        return
    (record,) = transactions.transaction_model().scan()  # the refusal's `rejected` record, as for any bad input
    assert body_of(response)["error"]["request_ids"] == [record.request_id]
    assert (record.status, record.error_code) == ("rejected", "too_large")
    assert record.headline == body.decode("utf-8", errors="replace")[:MAX_HEADLINE_CHARS]


def test_the_largest_valid_batch_is_well_under_the_body_limit(api: Client, openapi: dict) -> None:
    """64 headlines of 1000 characters, each an astral character JSON writes as a 12-byte escape pair."""
    body = _json({"headlines": ["\U0001f600" * MAX_HEADLINE_CHARS] * MAX_BATCH_HEADLINES})
    assert 0.7 * MAX_BODY_BYTES < len(body) < 0.75 * MAX_BODY_BYTES
    response = api.http.post("/classify/batch", body=body, headers=JSON)
    assert response.status_code == 200
    assert len(body_of(response)["results"]) == MAX_BATCH_HEADLINES
