"""Stage settings are validated when read: a wrong value is a ConfigError naming the variable, never a crash."""

from __future__ import annotations

import pytest
from chalice.test import Client
from chalicelib import transactions
from chalicelib.config import ConfigError, model_settings, settings_problems, table_settings

from tests.support.api_testing import LogCapture, body_of, post_json


@pytest.mark.parametrize("value", ["0", "-1", "two", "²", "1.5"])
def test_bad_counts_are_config_errors(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TRANSACTION_TTL_DAYS", value)
    with pytest.raises(ConfigError, match="TRANSACTION_TTL_DAYS"):
        table_settings()


@pytest.mark.parametrize("value", ["0", "-2", "soon"])
def test_bad_timeouts_are_config_errors(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MODEL_READ_TIMEOUT_SECONDS", value)
    with pytest.raises(ConfigError, match="MODEL_READ_TIMEOUT_SECONDS"):
        model_settings()


def test_good_values_are_read_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSACTION_TTL_DAYS", "30")
    monkeypatch.setenv("MODEL_READ_TIMEOUT_SECONDS", "2.5")
    assert table_settings().ttl_days == 30
    assert model_settings().read_timeout == 2.5


def test_settings_problems_reads_the_mapping_given_and_names_each_broken_group(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSACTION_TTL_DAYS", "two")  # the process's own variables are not the stage's
    assert settings_problems({"ENDPOINT_NAME": "news", "TRANSACTION_TTL_DAYS": "30"}) == []
    problems = settings_problems({"MODEL_VARIANTS": '{"a": -1}', "TRANSACTION_TTL_DAYS": "0",
                                  "DRIFT_MAX_RECORDS": "many"})
    assert [p.split("=")[0].split(":")[0] for p in problems] == ["MODEL_VARIANTS", "TRANSACTION_TTL_DAYS",
                                                                "DRIFT_MAX_RECORDS"]


def test_a_table_setting_too_broken_to_build_a_record_still_gets_an_answer_in_our_shape(
        client: Client, table: str, api_logs: LogCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:  # the test client sets the stage's environment per request, so break the reader
        raise ConfigError("TRANSACTION_TTL_DAYS='two' must be a whole number >= 1")

    monkeypatch.setattr(transactions, "table_settings", broken)
    response = post_json(client, "/classify", {"headline": 7})
    assert (response.status_code, body_of(response)["error"]["code"]) == (400, "invalid_request")
    assert "request_ids" not in body_of(response)["error"]  # nothing could be recorded, so nothing is named
    [event] = api_logs.events("transaction_not_recorded")
    assert "TRANSACTION_TTL_DAYS" in event["exception"]
