"""The scheduled drift job: the last window of transactions, per model version, against that version's baseline.

Groups by model version because an A/B test serves several; publishes one fixed-dimension `DriftPSIMax` series,
because versions change with every deployment and the alarm needs a stable one (docs/drift.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from . import drift_baselines, telemetry, transactions
from .config import drift_settings, score_settings
from .drift import (
    RUNTIME_FEATURES,
    STABLE,
    TOO_FEW,
    DriftReport,
    DriftThresholds,
    Extractor,
    Observation,
    compare,
)
from .drift_baselines import BaselineUnavailableError
from .transactions import OK, TransactionRecord

JOB = "drift"


@dataclass
class VersionTraffic:
    """The window's successful classifications by one model version, and the endpoints that served them."""

    observations: list[Observation] = field(default_factory=list)
    endpoints: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class DriftRun:
    since: dt.datetime
    until: dt.datetime
    records_read: int
    truncated: bool  # DRIFT_MAX_RECORDS was reached: the window is the newest records_read transactions
    reports: list[DriftReport]
    endpoints: dict[str, list[str]]  # model version -> endpoints that served it
    skipped: dict[str, str]  # model version -> why it has no report

    @property
    def psi_max(self) -> float | None:
        return max((r.psi_max for r in self.reports if r.psi_max is not None), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "records_read": self.records_read,
                "truncated": self.truncated, "psi_max": self.psi_max,
                "reports": [self.report_dict(r) for r in self.reports], "skipped": self.skipped}

    def report_dict(self, report: DriftReport) -> dict[str, Any]:
        return {**report.to_dict(), "endpoints": self.endpoints.get(report.model_version, [])}


def observation(record: TransactionRecord) -> Observation | None:
    """What drift needs from a transaction; None for failed classifications, which have no prediction."""
    if record.status != OK or record.label is None or record.scores is None:
        return None
    scores = record.scores.as_dict()
    if record.label not in scores:
        return None
    return Observation(record.headline, record.label, float(scores[record.label]))


def collect(records: Iterable[TransactionRecord], max_records: int) -> tuple[dict[str, VersionTraffic], int, bool]:
    """Group up to `max_records` records by model version; also the number read and whether the cap was hit."""
    traffic: dict[str, VersionTraffic] = {}
    read = 0
    for record in records:
        if read == max_records:
            return traffic, read, True
        read += 1
        seen = observation(record)
        if seen is not None and record.model_version is not None:
            group = traffic.setdefault(record.model_version, VersionTraffic())
            group.observations.append(seen)
            if record.endpoint_name:
                group.endpoints.add(record.endpoint_name)
    return traffic, read, False


def assess(traffic: dict[str, VersionTraffic], baseline_uri: str | None, thresholds: DriftThresholds,
           extractors: Mapping[str, Extractor] = RUNTIME_FEATURES) -> tuple[list[DriftReport], dict[str, str]]:
    """Each version's traffic against its own baseline; versions without one are returned with the reason."""
    reports: list[DriftReport] = []
    skipped: dict[str, str] = {}
    for version, group in sorted(traffic.items()):
        try:
            if baseline_uri is None:
                raise BaselineUnavailableError("DRIFT_BASELINE_URI is not set")
            baseline = drift_baselines.load(baseline_uri, version)
        except BaselineUnavailableError as exc:
            skipped[version] = str(exc)
            continue
        reports.append(compare(baseline, group.observations, thresholds, extractors))
    return reports, skipped


def measure(since: dt.datetime, until: dt.datetime, baseline_uri: str | None, thresholds: DriftThresholds,
            max_records: int, extractors: Mapping[str, Extractor] = RUNTIME_FEATURES) -> DriftRun:
    """Read the window newest first through the day index and compare each model version with its baseline."""
    traffic, read, truncated = collect(transactions.between(since, until, newest_first=True), max_records)
    reports, skipped = assess(traffic, baseline_uri, thresholds, extractors)
    return DriftRun(since, until, read, truncated, reports,
                    {version: sorted(group.endpoints) for version, group in traffic.items()}, skipped)


def run(now: dt.datetime) -> DriftRun:
    """The scheduled job: the window ending at `now` as configured, then its metrics and log lines."""
    settings = drift_settings()
    thresholds = DriftThresholds(min_samples=settings.min_samples,
                                 low_confidence_below=score_settings().uncertain_below)
    result = measure(now - dt.timedelta(hours=settings.window_hours), now, settings.baseline_uri, thresholds,
                     settings.max_records)
    publish(result)
    return result


def publish(result: DriftRun) -> None:
    for report in result.reports:
        version = report.model_version
        telemetry.flush_job_metrics(JOB, {"DriftSamples": report.samples}, MetricUnit.Count, model_version=version)
        if report.status != TOO_FEW:
            telemetry.flush_job_metrics(JOB, {"LowConfidenceShare": report.low_confidence_share},
                                        model_version=version)
            for feature in report.features:
                telemetry.flush_job_metrics(JOB, {"DriftPSI": feature.psi}, model_version=version,
                                            feature=feature.feature)
        log = telemetry.logger.info if report.status in (STABLE, TOO_FEW) else telemetry.logger.warning
        log("drift_report", extra=result.report_dict(report))
    for version, reason in result.skipped.items():
        telemetry.logger.warning("drift_skipped", extra={"model_version": version, "reason": reason})
    if result.psi_max is not None:
        telemetry.flush_job_metrics(JOB, {"DriftPSIMax": result.psi_max})
