"""The "uncertain" flag: a result whose top score is below the stage's UNCERTAIN_BELOW says so, stored and counted."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client
from chalicelib.config import DEFAULT_UNCERTAIN_BELOW, ConfigError, score_settings, settings_problems

from tests.support.api_testing import (
    FakeEndpoint,
    Reply,
    _emf_documents,
    _metric,
    assert_documented,
    body_of,
    post_json,
)

# Top scores 0.55 and 0.9: uncertain below 0.6, certain below 0.5.
PREDICTION = json.dumps({"predictions": [{"label": "Science", "scores": {"Science": 0.55, "Health": 0.45}},
                                         {"label": "Health", "scores": {"Science": 0.1, "Health": 0.9}}],
                         "model_version": "fake-3"}).encode()


def test_results_below_the_threshold_are_flagged_stored_and_counted(
        client: Client, table: str, fake_endpoint: FakeEndpoint, openapi: dict, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("UNCERTAIN_BELOW", "0.6")
    fake_endpoint.answer(Reply(body=PREDICTION))
    capsys.readouterr()
    response = post_json(client, "/classify/batch", {"headlines": ["Phone maker sues", "Flu season ends"]})
    assert_documented(openapi, "/classify/batch", "POST", response)
    results = body_of(response)["results"]
    assert [(r["label"], r["uncertain"]) for r in results] == [("Science", True), ("Health", False)]
    assert _metric(_emf_documents(capsys.readouterr().out), "UncertainPredictions", route="/classify/batch") == [[1.0]]
    for result in results:
        stored = client.http.get(f"/transactions/{result['request_id']}")
        assert_documented(openapi, "/transactions/{request_id}", "GET", stored)
        assert body_of(stored)["uncertain"] is result["uncertain"]


def test_the_default_threshold_applies_when_the_stage_sets_none(
        client: Client, table: str, fake_endpoint: FakeEndpoint) -> None:
    below, at = DEFAULT_UNCERTAIN_BELOW - 0.01, DEFAULT_UNCERTAIN_BELOW
    fake_endpoint.answer(Reply(body=json.dumps({"predictions": [
        {"label": "Science", "scores": {"Science": below, "Health": 1 - below}},
        {"label": "Health", "scores": {"Science": 1 - at, "Health": at}}], "model_version": "fake-3"}).encode()))
    results = body_of(post_json(client, "/classify/batch", {"headlines": ["A", "B"]}))["results"]
    assert [r["uncertain"] for r in results] == [True, False]


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "nan", "inf", "half"])
def test_a_broken_threshold_is_a_config_error_and_refused_before_deploying(value: str) -> None:
    with pytest.raises(ConfigError, match="UNCERTAIN_BELOW"):
        score_settings({"UNCERTAIN_BELOW": value})
    [problem] = settings_problems({"ENDPOINT_NAME": "news", "UNCERTAIN_BELOW": value})
    assert problem.startswith("UNCERTAIN_BELOW=")


def test_zero_flags_nothing_and_a_threshold_is_read_as_given() -> None:
    assert score_settings({"UNCERTAIN_BELOW": "0"}).uncertain_below == 0
    assert score_settings({"UNCERTAIN_BELOW": " 0.75 "}).uncertain_below == 0.75
