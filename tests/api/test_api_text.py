"""Text that JSON allows but Unicode does not (a lone UTF-16 surrogate such as "\\ud800") is refused as a 400 with
its `rejected` record, arbitrary text gets the status the contract gives it (never a 5xx, never a refusal of a valid
headline) and never loses a record: property-based over the text itself."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from typing import Any

import pytest
from chalice.test import Client
from chalicelib import telemetry, transactions, validation
from chalicelib.errors import ApiError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.serving.inference import validate_headline
from tests.support.api_testing import body_of, post_json
from tests.support.text_strategies import api_headline_status, headline_texts

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _stored(api: Client, request_id: str) -> dict[str, Any]:
    response = api.http.get(f"/transactions/{request_id}")
    assert response.status_code == 200, f"no record for {request_id}: {response.body!r}"
    return body_of(response)


@pytest.mark.parametrize("headline", ["Stocks \ud800 rally", "\udfff", "Fed \udc80\ud800 hikes rates"])
def test_a_lone_surrogate_is_refused_with_its_record(api: Client, headline: str) -> None:
    response = post_json(api, "/classify", {"headline": headline})
    assert response.status_code == 400
    error = body_of(response)["error"]
    assert "not valid Unicode text" in error["message"]
    [request_id] = error["request_ids"]
    record = _stored(api, request_id)
    assert record["status"] == transactions.REJECTED
    assert record["headline"] == json.dumps({"headline": headline})  # the body as sent, escapes kept


def test_one_bad_headline_refuses_the_batch_and_keeps_its_record(api: Client) -> None:
    response = post_json(api, "/classify/batch", {"headlines": ["Oil falls", "Stocks \ud800 rally", "Apple"]})
    assert response.status_code == 400
    error = body_of(response)["error"]
    assert "'headlines'[1]" in error["message"]
    [request_id] = error["request_ids"]
    assert _stored(api, request_id)["status"] == transactions.REJECTED


def test_feedback_with_a_lone_surrogate_is_refused(api: Client) -> None:
    answer = body_of(post_json(api, "/classify", {"headline": "Oil prices fall"}))
    response = post_json(api, f"/transactions/{answer['request_id']}/feedback", {"label": "Busi\ud800ness"})
    assert (response.status_code, body_of(response)["error"]["code"]) == (400, "invalid_request")
    assert "feedback_label" not in _stored(api, answer["request_id"])


def expected_status(headline: str) -> int:
    return api_headline_status(headline, validation.MAX_HEADLINE_CHARS)


def as_received(headline: str) -> str:
    """The text the API decodes from the JSON body: two lone surrogates side by side travel as one escaped pair
    ("\\ud83d\\ude00") and arrive as the character they encode."""
    return json.loads(json.dumps(headline))


@FUZZ
@given(headline=headline_texts())
def test_any_headline_gets_the_status_the_contract_gives_it_and_is_never_lost(api: Client, headline: str) -> None:
    response = post_json(api, "/classify", {"headline": headline})
    assert response.status_code == expected_status(as_received(headline)), (response.status_code, response.body)
    body = body_of(response)
    request_ids = [body["request_id"]] if response.status_code == 200 else body["error"]["request_ids"]
    for request_id in request_ids:
        _stored(api, request_id)


@FUZZ
@given(headlines=st.lists(headline_texts(), min_size=1, max_size=5))
def test_any_batch_gets_the_status_of_its_first_refused_headline_and_is_never_lost(api: Client,
                                                                                   headlines: list[str]) -> None:
    response = api.http.post("/classify/batch", body=json.dumps({"headlines": headlines}),
                             headers={"Content-Type": "application/json"})
    expected = next((s for s in map(expected_status, map(as_received, headlines)) if s != 200), 200)
    assert response.status_code == expected, (response.status_code, response.body)
    body = body_of(response)
    if response.status_code == 200:
        request_ids = [result["request_id"] for result in body["results"]]
        assert len(request_ids) == len(headlines)
    else:
        request_ids = body["error"]["request_ids"]
    for request_id in request_ids:
        _stored(api, request_id)


def _outcome(headline: str) -> transactions.Outcome:
    return transactions.Outcome(transactions.new_request_id(), headline, 1.0, label="Business",
                                scores={"Business": 0.9, "Health": 0.1}, model_version="v1")


@FUZZ
@given(headline=headline_texts())
def test_the_record_store_keeps_any_text(table: str, headline: str) -> None:
    outcome = _outcome(headline)
    record = transactions.build_record(outcome, dt.datetime.now(dt.UTC), "news-classifier", None)
    assert transactions.save([record])
    expected = headline.encode("utf-8", "backslashreplace").decode("utf-8")  # the text itself unless a surrogate
    assert transactions.find(outcome.request_id).headline == expected


def test_the_unsaved_record_line_is_written_whatever_the_text(capsys: pytest.CaptureFixture[str]) -> None:
    """Lambda's stdout takes UTF-8 only: the fallback line must encode even when the headline does not."""
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(telemetry.logger.registered_formatter)
    stdlib_logger = logging.getLogger(telemetry.logger.name)
    stdlib_logger.addHandler(handler)
    try:
        record = transactions.build_record(_outcome("Stocks \ud800 rally \u202e"), dt.datetime.now(dt.UTC), None, None)
        record.headline = "Stocks \ud800 rally"  # as an older record, built before the text was made storable
        telemetry.logger.error(transactions.UNSAVED_EVENT, extra={"record": record.to_simple_dict(), "reason": "x"})
    finally:
        stdlib_logger.removeHandler(handler)
    assert "Logging error" not in capsys.readouterr().err
    [line] = stream.buffer.getvalue().decode("utf-8").splitlines()
    assert json.loads(line)["record"]["headline"] == "Stocks \ud800 rally"


@FUZZ
@given(text=headline_texts())
def test_the_api_accepts_the_headlines_the_contract_allows_and_the_model_server_accepts_them(text: str) -> None:
    """The API and the model server check text apart (the Lambda zip cannot import model/): this pins them."""
    if expected_status(text) == 200:
        assert validation.headline(text) == text
        assert validate_headline(text) == text
    else:
        with pytest.raises(ApiError) as refused:
            validation.headline(text)
        assert refused.value.status == expected_status(text)
