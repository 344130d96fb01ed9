"""The A/B report's numbers: what it keeps of a transaction, each variant's summary, the tests of every variant
against the control (Bonferroni-corrected) and the verdict; the replay's comparisons join them (`ab_replay`). No
I/O: `ab.py` reads the window, `ab_render.py` shows the result."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from chalice_app.chalicelib import transactions
from chalice_app.chalicelib.transactions import TransactionRecord
from chalice_app.reports.ab_replay import Replay, wilson
from chalice_app.reports.stage_table import ReportError


@dataclass(frozen=True)
class Observation:
    """What the report needs of one transaction."""

    endpoint: str
    model_version: str | None
    ok: bool
    label: str | None
    top_score: float | None
    latency_ms: float
    feedback_label: str | None

    @classmethod
    def from_record(cls, record: TransactionRecord) -> Observation:
        scores = record.scores.as_dict() if record.scores is not None else {}
        return cls(endpoint=str(record.endpoint_name), model_version=record.model_version,
                   ok=record.status == transactions.OK, label=record.label,
                   top_score=scores.get(record.label) if record.label else None,
                   latency_ms=float(record.latency_ms), feedback_label=record.feedback_label)

    @property
    def correct(self) -> bool | None:
        """Whether the model was right, when feedback says; None without feedback or prediction."""
        if self.feedback_label is None or self.label is None:
            return None
        return self.label == self.feedback_label


@dataclass(frozen=True)
class VariantSummary:
    endpoint: str
    model_versions: list[str]
    requests: int
    errors: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    label_counts: dict[str, int]
    mean_confidence: float | None
    feedback: int
    correct: int
    accuracy: float | None
    accuracy_ci95: tuple[float, float] | None  # Wilson interval


@dataclass(frozen=True)
class TestResult:
    test: str
    p_value: float | None  # None: not run, see `note`
    significant: bool
    note: str


@dataclass(frozen=True)
class Comparison:
    control: str
    treatment: str
    alpha: float  # per comparison, after the Bonferroni correction
    accuracy: TestResult
    error_rate: TestResult
    latency: TestResult
    labels: TestResult
    verdict: str


@dataclass(frozen=True)
class AbThresholds:
    """When an A/B difference counts: the family-wise significance level and the samples per variant first."""

    alpha: float = 0.05
    min_feedback: int = 30
    min_requests: int = 30


@dataclass
class Report:
    stage: str
    since: str
    until: str
    thresholds: AbThresholds
    control: str | None
    variants: dict[str, VariantSummary]
    comparisons: list[Comparison] = field(default_factory=list)
    skipped_without_endpoint: int = 0
    replay: Replay | None = None  # the same headlines to every variant (ab_replay), when asked for


def by_endpoint(observations: Iterable[Observation]) -> dict[str, list[Observation]]:
    groups: dict[str, list[Observation]] = {}
    for observation in observations:
        groups.setdefault(observation.endpoint, []).append(observation)
    return dict(sorted(groups.items()))


def summarize(endpoint: str, observations: Sequence[Observation]) -> VariantSummary:
    answered = [o for o in observations if o.ok]
    latencies = np.array([o.latency_ms for o in answered])
    scores = [o.top_score for o in answered if o.top_score is not None]
    judged = [o.correct for o in observations if o.correct is not None]
    correct = sum(judged)
    return VariantSummary(
        endpoint=endpoint,
        model_versions=sorted({o.model_version for o in answered if o.model_version}),
        requests=len(observations), errors=len(observations) - len(answered),
        error_rate=(len(observations) - len(answered)) / len(observations),
        latency_p50_ms=float(np.percentile(latencies, 50)) if answered else None,
        latency_p95_ms=float(np.percentile(latencies, 95)) if answered else None,
        label_counts=dict(Counter(o.label for o in answered if o.label).most_common()),
        mean_confidence=float(np.mean(scores)) if scores else None,
        feedback=len(judged), correct=correct, accuracy=correct / len(judged) if judged else None,
        accuracy_ci95=wilson(correct, len(judged)) if judged else None,
    )


def _result(test: str, p_value: float, alpha: float, note: str) -> TestResult:
    return TestResult(test, float(p_value), bool(p_value < alpha), note)


def _not_run(test: str, note: str) -> TestResult:
    return TestResult(test, None, False, note)


def accuracy_test(control: VariantSummary, treatment: VariantSummary, alpha: float, minimum: int) -> TestResult:
    if min(control.feedback, treatment.feedback) < minimum:
        return _not_run("fisher_exact", f"not enough feedback: {treatment.feedback}/{control.feedback} labelled "
                                        f"transactions, {minimum} per variant needed")
    table = [[treatment.correct, treatment.feedback - treatment.correct],
             [control.correct, control.feedback - control.correct]]
    return _result("fisher_exact", stats.fisher_exact(table).pvalue, alpha,
                   f"accuracy {treatment.accuracy:.3f} vs {control.accuracy:.3f}, "
                   f"n={treatment.feedback}/{control.feedback} with feedback")


def error_rate_test(control: VariantSummary, treatment: VariantSummary, alpha: float, minimum: int) -> TestResult:
    if min(control.requests, treatment.requests) < minimum:
        return _not_run("fisher_exact", _too_few_requests(control, treatment, minimum))
    table = [[treatment.errors, treatment.requests - treatment.errors],
             [control.errors, control.requests - control.errors]]
    return _result("fisher_exact", stats.fisher_exact(table).pvalue, alpha,
                   f"error rate {treatment.error_rate:.2%} vs {control.error_rate:.2%}")


def latency_test(control: Sequence[Observation], treatment: Sequence[Observation], alpha: float,
                 minimum: int) -> TestResult:
    control_ms = [o.latency_ms for o in control if o.ok]
    treatment_ms = [o.latency_ms for o in treatment if o.ok]
    if min(len(control_ms), len(treatment_ms)) < minimum:
        return _not_run("mann_whitney_u", f"not enough answered requests: {len(treatment_ms)}/{len(control_ms)}, "
                                          f"{minimum} per variant needed")
    p_value = stats.mannwhitneyu(treatment_ms, control_ms, alternative="two-sided").pvalue
    return _result("mann_whitney_u", p_value, alpha, f"p50 {np.median(treatment_ms):.1f} vs "
                                                     f"{np.median(control_ms):.1f} ms")


def label_test(control: VariantSummary, treatment: VariantSummary, alpha: float, minimum: int) -> TestResult:
    if min(control.requests, treatment.requests) < minimum:
        return _not_run("chi_square", _too_few_requests(control, treatment, minimum))
    labels = sorted(set(control.label_counts) | set(treatment.label_counts))
    if len(labels) < 2:
        return _not_run("chi_square", f"only one label was predicted ({', '.join(labels) or 'none'})")
    table = [[summary.label_counts.get(label, 0) for label in labels] for summary in (treatment, control)]
    return _result("chi_square", stats.chi2_contingency(table).pvalue, alpha, f"{len(labels)} labels")


def _too_few_requests(control: VariantSummary, treatment: VariantSummary, minimum: int) -> str:
    return f"not enough requests: {treatment.requests}/{control.requests}, {minimum} per variant needed"


def verdict(control: VariantSummary, treatment: VariantSummary, accuracy: TestResult) -> str:
    """One plain sentence about quality; the guardrail tests are reported beside it."""
    name, other = treatment.endpoint, control.endpoint
    if accuracy.p_value is None:
        return f"{name} vs {other}: {accuracy.note}"
    if not accuracy.significant:
        return f"{name} vs {other}: no significant difference in accuracy ({accuracy.note}, p={accuracy.p_value:.3g})"
    better = (treatment.accuracy or 0.0) > (control.accuracy or 0.0)
    return (f"{name} is {'better' if better else 'worse'} than {other} on accuracy "
            f"({accuracy.note}, p={accuracy.p_value:.3g})")


def compare(groups: dict[str, list[Observation]], control: str, thresholds: AbThresholds) -> list[Comparison]:
    summaries = {name: summarize(name, group) for name, group in groups.items()}
    treatments = [name for name in groups if name != control]
    alpha = thresholds.alpha / max(1, len(treatments))
    comparisons = []
    for name in treatments:
        base, candidate = summaries[control], summaries[name]
        accuracy = accuracy_test(base, candidate, alpha, thresholds.min_feedback)
        comparisons.append(Comparison(
            control=control, treatment=name, alpha=alpha, accuracy=accuracy,
            error_rate=error_rate_test(base, candidate, alpha, thresholds.min_requests),
            latency=latency_test(groups[control], groups[name], alpha, thresholds.min_requests),
            labels=label_test(base, candidate, alpha, thresholds.min_requests),
            verdict=verdict(base, candidate, accuracy)))
    return comparisons


def build_report(observations: Sequence[Observation], stage: str, since: dt.datetime, until: dt.datetime,
                 thresholds: AbThresholds, control: str | None = None, skipped: int = 0) -> Report:
    groups = by_endpoint(observations)
    if control is not None and control not in groups:
        raise ReportError(f"control {control!r} has no transactions in the window; "
                          f"variants seen: {', '.join(groups) or 'none'}")
    chosen = control or (max(groups, key=lambda name: len(groups[name])) if groups else None)
    return Report(stage=stage, since=since.isoformat(), until=until.isoformat(), thresholds=thresholds,
                  control=chosen, variants={name: summarize(name, group) for name, group in groups.items()},
                  comparisons=compare(groups, chosen, thresholds) if chosen else [],
                  skipped_without_endpoint=skipped)
