"""What `make fuzz` (schemathesis) found, kept as fast regular tests: each case it reported, and the document facts
it showed were missing (blank text, the API key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import jsonschema_rs
import pytest
from chalice.test import Client
from chalicelib import validation
from openapi_schema_validator import OAS30Validator

from devkit.stages import CHALICE_DIR
from tests.support.api_testing import _inline_refs, assert_documented, body_of, post_json

# Whitespace only, in the scripts the fuzzer drew from: Python, ECMAScript and Unicode disagree on U+001C, U+0085
# and U+FEFF, so each is here.
BLANK = [" ", "\t\n", "\u3000", "\u00a0\u2028", "\x1c", "\x85", "\ufeff"]
# Its first finding, byte for byte: a batch valid for the old schema (minLength 1) refused for its blank third headline.
FOUND_BATCH = (rb'{"headlines": ["\u0084\u00c6u\uda8f\udd7aM", "\u00b7\u0099\u00d5\u008aj\udad3\udd1d\u00dc", '
               rb'" ", "\u009e"]}')


def _request_schema(openapi: dict[str, Any], route: str) -> OAS30Validator:
    body = openapi["paths"][route]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return OAS30Validator(_inline_refs(body, openapi))


@pytest.mark.parametrize("text", BLANK, ids=[repr(t) for t in BLANK])
def test_blank_headlines_are_refused_by_the_document_and_the_api(client: Client, table: str, fake_endpoint,
                                                                 openapi: dict, text: str) -> None:
    for route, body in (("/classify", {"headline": text}), ("/classify/batch", {"headlines": ["Oil falls", text]})):
        assert not _request_schema(openapi, route).is_valid(body)
        response = post_json(client, route, body)
        assert (response.status_code, body_of(response)["error"]["code"]) == (400, "invalid_request")
        assert_documented(openapi, route, "POST", response)
    assert fake_endpoint.calls == 0


def test_the_fuzzers_blank_batch_is_refused_at_its_blank_headline(client: Client, table: str, fake_endpoint,
                                                                   openapi: dict) -> None:
    response = client.http.post("/classify/batch", body=FOUND_BATCH, headers={"Content-Type": "application/json"})
    assert not _request_schema(openapi, "/classify/batch").is_valid(json.loads(FOUND_BATCH))
    assert response.status_code == 400
    assert body_of(response)["error"]["message"] == "'headlines'[2] is empty"
    assert fake_endpoint.calls == 0


def test_one_visible_character_among_whitespace_is_a_headline(api: Client, openapi: dict) -> None:
    body = {"headline": "\u3000\ufeffx\u2028"}
    assert _request_schema(openapi, "/classify").is_valid(body)
    response = post_json(api, "/classify", body)
    assert response.status_code == 200
    assert_documented(openapi, "/classify", "POST", response)


@pytest.mark.parametrize("text", BLANK, ids=[repr(t) for t in BLANK])
def test_blank_feedback_labels_are_refused_by_the_document_and_the_api(client: Client, table: str, openapi: dict,
                                                                       text: str) -> None:
    route = "/transactions/{request_id}/feedback"
    assert not _request_schema(openapi, route).is_valid({"label": text})
    response = post_json(client, route.format(request_id=uuid.uuid4()), {"label": text})
    assert (response.status_code, body_of(response)["error"]["code"]) == (400, "invalid_request")
    assert_documented(openapi, route, "POST", response)


def test_a_schema_valid_label_the_model_did_not_score_is_a_documented_400(api: Client, openapi: dict) -> None:
    """Found as "schema-valid request rejected": label names come from the model, so the schema cannot list them."""
    request_id = body_of(post_json(api, "/classify", {"headline": "Oil prices fall"}))["request_id"]
    response = post_json(api, f"/transactions/{request_id}/feedback", {"label": "0"})
    assert (response.status_code, body_of(response)["error"]["code"]) == (400, "unknown_label")
    assert_documented(openapi, "/transactions/{request_id}/feedback", "POST", response)


def test_the_document_states_the_blank_rule_the_api_enforces(openapi: dict) -> None:
    schemas = openapi["components"]["schemas"]
    assert schemas["Headline"]["pattern"] == validation._NOT_BLANK.pattern
    assert schemas["FeedbackRequest"]["properties"]["label"]["pattern"] == validation._NOT_BLANK.pattern


def test_the_blank_pattern_means_whitespace_to_python_and_to_schemathesis_validator() -> None:
    """Whitespace is every str.isspace() code point plus ECMAScript's U+FEFF, in Python's engine and in Rust's."""
    everything = map(chr, range(sys.maxunicode + 1))
    blank = {c for c in everything if not validation._NOT_BLANK.search(c)}
    assert blank == {chr(i) for i in range(sys.maxunicode + 1) if chr(i).isspace()} | {"\ufeff"}
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": validation._NOT_BLANK.pattern})
    assert all(rust.is_valid(chr(i)) != (chr(i) in blank) for i in range(0x10000) if not 0xD800 <= i < 0xE000)


def _routes_needing_a_key() -> set[tuple[str, str]]:
    """app.py as the AWS stages import it (API_KEY_REQUIRED=true), in a fresh interpreter: routes read it at import."""
    code = ("import json, app; print(json.dumps([[path, method.lower()] for path, methods in app.app.routes.items()"
            " for method, entry in methods.items() if entry.api_key_required]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=CHALICE_DIR, capture_output=True, text=True, check=True,
                            env={**os.environ, "API_KEY_REQUIRED": "true"})
    return {(path, method) for path, method in json.loads(result.stdout.splitlines()[-1])}


def test_the_document_requires_the_api_key_exactly_where_api_gateway_checks_it(openapi: dict) -> None:
    """Found as "missing x-api-key accepted": the key was not documented at all."""
    scheme = openapi["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "x-api-key")
    documented = {(path, method) for path, item in openapi["paths"].items() for method, operation in item.items()
                  if operation.get("security", openapi["security"])}
    assert documented == _routes_needing_a_key()
    for path, method in documented:
        assert "403" in openapi["paths"][path][method]["responses"], f"{method} {path}: API Gateway's 403"
