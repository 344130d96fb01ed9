"""The scheduled drift job (app.py `monitor_drift`) through Chalice's test client: transactions in moto's
DynamoDB, each model version's baseline in moto's S3 where model/tools/deploy_endpoint.py puts it, EMF metrics and
JSON logs
out. The headline streams are real NLP-100 titles with synthetic answers (tests/support/drift_streams.py)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client
from chalicelib import transactions
from chalicelib.drift import ALARM, STABLE, DriftThresholds
from chalicelib.drift_monitor import measure
from chalicelib.transactions import Outcome, TransactionRecord

from model.tools.release import artifact_location, baseline_key
from tests.support.api_testing import LogCapture
from tests.support.drift_streams import LABELS, baseline, probabilities, streams
from training_jobs.data import Example

BUCKET = "news-artifacts"
PREFIX = "news-classifier/models"
VERSION = "news-20250101-000000-abcdef12"
ENDPOINT = "news-classifier"
MIN_SAMPLES = 100  # the test split has 105 Health headlines


@pytest.fixture(scope="module")
def headline_streams(data_dir: Path) -> dict[str, list[Example]]:
    valid, normal, shifted = streams(data_dir)
    return {"valid": valid, "normal": normal, "shifted": shifted}


@pytest.fixture
def drift_env(table: str, moto_url: str, monkeypatch: pytest.MonkeyPatch,
              headline_streams: dict[str, list[Example]]) -> Any:
    """A bucket holding VERSION's baseline under model/tools/deploy_endpoint.py's key, and the job's variables
    pointing at it."""
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.create_bucket(Bucket=BUCKET)
    key, _ = artifact_location(BUCKET, PREFIX, VERSION)
    s3.put_object(Bucket=BUCKET, Key=baseline_key(key),
                  Body=json.dumps(baseline(headline_streams["valid"], VERSION)).encode())
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("DRIFT_BASELINE_URI", f"s3://{BUCKET}/{PREFIX}/{{model_version}}/drift_baseline.json")
    monkeypatch.setenv("DRIFT_MIN_SAMPLES", str(MIN_SAMPLES))
    monkeypatch.setenv("TABLE_READ_TIMEOUT_SECONDS", "10")  # as the stack sets it; moto's Query is slow too
    monkeypatch.setattr(TransactionRecord, "scan", _no_scan)
    return s3


def _no_scan(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the drift job must Query the day index, never Scan the table")


def store(examples: Sequence[Example], newest: dt.datetime, version: str = VERSION, endpoint: str = ENDPOINT,
          error_code: str | None = None) -> None:
    """One transaction per headline, a minute apart back from `newest`, as the API writes them."""
    records = []
    for i, example in enumerate(examples):
        scores = dict(zip(LABELS.names, map(float, probabilities(example)), strict=True))
        label = max(scores, key=scores.__getitem__)
        outcome = (Outcome(transactions.new_request_id(), example.title, 12.0, error_code=error_code) if error_code
                   else Outcome(transactions.new_request_id(), example.title, 12.0, label, scores, version))
        records.append(transactions.build_record(outcome, newest - dt.timedelta(minutes=i), endpoint, None))
    for record in records:  # one PutItem each: moto copies the whole table for every item of a transaction
        assert transactions.save([record])


def invoke(client: Client) -> dict[str, Any]:
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=["arn:aws:events:us-east-1:123456789012:rule/monitor-drift"])
    return client.lambda_.invoke("monitor_drift", event).payload


def emf_values(stdout: str, name: str, **dimensions: str) -> list[float]:
    values = []
    for line in stdout.splitlines():
        document = json.loads(line) if line.startswith("{") else {}
        if "_aws" in document and name in document and all(document.get(k) == v for k, v in dimensions.items()):
            value = document[name]
            values.extend(value if isinstance(value, list) else [value])
    return values


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_normal_traffic_is_stable(client: Client, drift_env: Any, headline_streams: dict[str, list[Example]],
                                  api_logs: LogCapture, capsys: pytest.CaptureFixture[str]) -> None:
    store(headline_streams["normal"], now())
    capsys.readouterr()
    result = invoke(client)
    (report,) = result["reports"]
    assert (report["model_version"], report["samples"], report["status"]) == (VERSION, 500, STABLE)
    assert report["endpoints"] == [ENDPOINT] and report["not_measured"] == ["token_length"]
    assert result["psi_max"] < DriftThresholds().warn
    out = capsys.readouterr().out
    assert emf_values(out, "DriftPSIMax", job="drift") == [pytest.approx(result["psi_max"])]
    for feature, value in report["psi"].items():
        assert emf_values(out, "DriftPSI", job="drift", model_version=VERSION, feature=feature) == [
            pytest.approx(value, abs=1e-4)]
    assert emf_values(out, "DriftSamples", model_version=VERSION) == [500]
    assert emf_values(out, "LowConfidenceShare", model_version=VERSION) == [
        pytest.approx(report["low_confidence"]["share"], abs=1e-4)]
    (logged,) = api_logs.events("drift_report")
    assert logged["level"] == "INFO" and logged["status"] == STABLE


def test_health_headlines_only_trip_the_alarm(client: Client, drift_env: Any,
                                              headline_streams: dict[str, list[Example]], api_logs: LogCapture,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    store(headline_streams["shifted"], now())
    capsys.readouterr()
    result = invoke(client)
    (report,) = result["reports"]
    assert report["status"] == ALARM and report["feature_status"]["label"] == ALARM
    (psi_max,) = emf_values(capsys.readouterr().out, "DriftPSIMax", job="drift")
    assert psi_max >= DriftThresholds().alarm  # what the stack's DriftAlarm compares with
    (logged,) = api_logs.events("drift_report")
    assert logged["level"] == "WARNING" and logged["psi"]["label"] == report["psi"]["label"]


def test_only_the_window_and_successful_classifications_count(client: Client, drift_env: Any,
                                                              headline_streams: dict[str, list[Example]]) -> None:
    normal = headline_streams["normal"]
    store(normal[:MIN_SAMPLES], now())
    store(normal[MIN_SAMPLES:], now() - dt.timedelta(hours=30))  # before the 24-hour window
    store(normal[:20], now(), error_code="model_timeout")
    (report,) = invoke(client)["reports"]
    assert report["samples"] == MIN_SAMPLES


def test_each_version_is_compared_with_its_own_baseline(client: Client, drift_env: Any, api_logs: LogCapture,
                                                        headline_streams: dict[str, list[Example]]) -> None:
    store(headline_streams["normal"][:MIN_SAMPLES], now(), endpoint="news-v3")
    store(headline_streams["normal"][:10], now(), version="news-v4", endpoint="news-v4")
    result = invoke(client)
    assert [r["model_version"] for r in result["reports"]] == [VERSION]
    assert result["reports"][0]["endpoints"] == ["news-v3"]
    assert "news-v4/drift_baseline.json: NoSuchKey" in result["skipped"]["news-v4"]
    (skipped,) = api_logs.events("drift_skipped")
    assert skipped["model_version"] == "news-v4" and skipped["level"] == "WARNING"


def test_small_windows_and_missing_configuration_publish_no_psi(client: Client, drift_env: Any,
                                                                headline_streams: dict[str, list[Example]],
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    store(headline_streams["shifted"][:MIN_SAMPLES - 1], now())
    capsys.readouterr()
    (report,) = invoke(client)["reports"]
    out = capsys.readouterr().out
    assert report["status"] == "too_few_samples" and report["psi"] == {}
    assert emf_values(out, "DriftSamples") == [MIN_SAMPLES - 1]
    assert emf_values(out, "DriftPSI") == emf_values(out, "DriftPSIMax") == []

    monkeypatch.delenv("DRIFT_BASELINE_URI")
    result = invoke(client)
    assert result["reports"] == [] and result["skipped"] == {VERSION: "DRIFT_BASELINE_URI is not set"}


def test_window_spans_utc_days_and_keeps_the_newest_records(drift_env: Any,
                                                           headline_streams: dict[str, list[Example]]) -> None:
    midnight = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    normal = headline_streams["normal"]
    store(normal[:MIN_SAMPLES], midnight + dt.timedelta(minutes=30))  # 00:30 back to 22:51 the day before
    store(normal[MIN_SAMPLES:MIN_SAMPLES + 5], midnight - dt.timedelta(hours=5))  # before the window
    uri = f"s3://{BUCKET}/{PREFIX}/{{model_version}}/drift_baseline.json"
    since, until = midnight - dt.timedelta(hours=4), midnight + dt.timedelta(hours=4)
    window = measure(since, until, uri, DriftThresholds(min_samples=1), max_records=10_000)
    assert (window.records_read, window.truncated, window.reports[0].samples) == (MIN_SAMPLES, False, MIN_SAMPLES)

    capped = measure(since, until, uri, DriftThresholds(min_samples=1), max_records=40)
    assert (capped.records_read, capped.truncated) == (40, True)
    newest_first = [r.created_at for r in transactions.between(since, until, newest_first=True)]
    assert newest_first == sorted(newest_first, reverse=True) and len(newest_first) == MIN_SAMPLES


def test_the_low_confidence_share_is_counted_below_the_stages_uncertain_line(
        client: Client, drift_env: Any, headline_streams: dict[str, list[Example]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The job's LowConfidenceShare counts what the API flags "uncertain", at the stage's UNCERTAIN_BELOW."""
    normal = headline_streams["normal"][:MIN_SAMPLES]
    store(normal, now())
    monkeypatch.setenv("UNCERTAIN_BELOW", "0.9")
    capsys.readouterr()
    (report,) = invoke(client)["reports"]
    flagged = sum(probabilities(ex).max() < 0.9 for ex in normal)
    assert report["low_confidence"]["threshold"] == 0.9
    assert report["low_confidence"]["share"] == pytest.approx(flagged / len(normal), abs=1e-4) and flagged > 0
    assert emf_values(capsys.readouterr().out, "LowConfidenceShare", model_version=VERSION) == [
        pytest.approx(flagged / len(normal), abs=1e-4)]
