"""Stage settings are validated when read: a wrong value is a ConfigError naming the variable, never a crash."""

from __future__ import annotations

import pytest
from chalicelib.config import ConfigError, model_settings, table_settings


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
