"""Thresholds of a load run: the file's rules, Locust's statistics as read, and the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.ledger import Ledger
from loadtest.thresholds import (
    DEFAULT_FILE,
    LoadThresholds,
    RunStats,
    ThresholdsError,
    check,
    load_thresholds,
    read_run_stats,
)

LIMITS = LoadThresholds(max_failure_ratio=0.01, max_p95_ms=100.0, min_requests_per_s=100.0,
                        min_classifications_per_s=150.0)


@pytest.mark.parametrize("profile", ["steady", "step", "spike", "endpoint"])
def test_the_shipped_file_gives_every_limit_for_every_profile(profile: str) -> None:
    limits = load_thresholds(DEFAULT_FILE, profile)
    assert all(isinstance(value, float) for value in vars(limits).values())


def test_a_profile_table_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("max_failure_ratio = 0.0\nmax_p95_ms = 100\nmin_requests_per_s = 120\n"
                    "[spike]\nmax_p95_ms = 250\n")
    assert load_thresholds(path, "spike") == LoadThresholds(0.0, 250.0, 120.0)
    assert load_thresholds(path, "step") == LoadThresholds(0.0, 100.0, 120.0)


@pytest.mark.parametrize(("content", "message"), [
    ("max_failure_ratio = 0\nmax_p95_ms = 100\nmin_request_per_s = 1\n", "unknown name"),
    ("max_failure_ratio = 0\nmax_p95_ms = 100\nmin_requests_per_s = -1\n", "must be a number >= 0"),
    ("max_failure_ratio = 0\nmax_p95_ms = '100'\nmin_requests_per_s = 1\n", "must be a number >= 0"),
    ("max_failure_ratio = 0\nmax_p95_ms = true\nmin_requests_per_s = 1\n", "must be a number >= 0"),
    ("max_failure_ratio = 0\nmax_p95_ms = 100\n", "min_requests_per_s"),
    ("max_p95_ms = [", "not valid TOML"),
])
def test_a_wrong_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(content)
    with pytest.raises(ThresholdsError, match=message):
        load_thresholds(path, "steady")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ThresholdsError, match="no such thresholds file"):
        load_thresholds(tmp_path / "absent.toml", "steady")


def test_the_final_totals_are_read_and_classifications_come_from_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "final_stats.json"
    path.write_text(json.dumps({"requests": 1200, "failures": 3, "requests_per_s": 160.5, "p50_ms": 21,
                                "p95_ms": 61, "p99_ms": 96}))
    ledger = Ledger("run", started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:01:00+00:00",
                    classified=9000)
    stats = read_run_stats(path, ledger)
    assert (stats.requests, stats.failures, stats.requests_per_s) == (1200, 3, 160.5)
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == (21, 61, 96)
    assert stats.classifications_per_s == pytest.approx(150.0)
    assert stats.failure_ratio == pytest.approx(3 / 1200)


@pytest.mark.parametrize(("content", "message"), [
    (None, "did Locust run with --final-stats"),
    ("{", "not the statistics"),
    (json.dumps({"requests": 1}), "not the statistics"),
])
def test_unusable_statistics_are_a_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "final_stats.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ThresholdsError, match=message):
        read_run_stats(path)


def test_a_run_without_requests_fails_every_limit() -> None:
    stats = RunStats(requests=0, failures=0, requests_per_s=0.0, p50_ms=0, p95_ms=0, p99_ms=0)
    assert not any(c.passed for c in check(LIMITS, stats))


def test_a_run_within_every_limit_passes() -> None:
    stats = RunStats(requests=1000, failures=0, requests_per_s=160.0, p50_ms=20.0, p95_ms=60.0, p99_ms=90.0,
                     classifications_per_s=200.0)
    checks = check(LIMITS, stats)
    assert [c.name for c in checks] == ["failure ratio", "p95 ms", "requests/s", "classifications/s"]
    assert all(c.passed for c in checks)


@pytest.mark.parametrize(("change", "failing"), [
    ({"failures": 20}, "failure ratio"),
    ({"p95_ms": 101.0}, "p95 ms"),
    ({"requests_per_s": 99.0}, "requests/s"),
    ({"classifications_per_s": 149.0}, "classifications/s"),
])
def test_each_limit_fails_on_its_own(change: dict, failing: str) -> None:
    base = {"requests": 1000, "failures": 0, "requests_per_s": 160.0, "p50_ms": 20.0, "p95_ms": 60.0,
            "p99_ms": 90.0, "classifications_per_s": 200.0}
    checks = check(LIMITS, RunStats(**{**base, **change}))
    assert [c.name for c in checks if not c.passed] == [failing]


def test_a_run_without_a_ledger_is_not_checked_for_classifications() -> None:
    stats = RunStats(requests=10, failures=0, requests_per_s=200.0, p50_ms=5.0, p95_ms=9.0, p99_ms=9.0)
    assert "classifications/s" not in [c.name for c in check(LIMITS, stats)]
