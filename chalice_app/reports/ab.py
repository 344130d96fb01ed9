"""`make ab-report`: compare the A/B variants (endpoints) of a stage over a window of its transaction log.

    python -m chalice_app.reports.ab --stage local [--hours 24] [--control news-v3] [--output artifacts/ab]

Each variant against the control at a Bonferroni-corrected alpha; the verdict is accuracy on feedback (Fisher's
exact test), withheld until enough feedback exists (docs/ab-and-retraining.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from chalicelib import transactions
from chalicelib.transactions import TransactionRecord
from rich.console import Console
from rich.table import Table
from scipy import stats

from chalice_app.ops.stages import CHALICE_DIR
from chalice_app.reports.stage import ReportError, use_stage

REPO_ROOT = CHALICE_DIR.parent
REPORT_NAME = "ab-report"
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
class Thresholds:
    alpha: float = 0.05
    min_feedback: int = 30
    min_requests: int = 30


@dataclass
class Report:
    stage: str
    since: str
    until: str
    thresholds: Thresholds
    control: str | None
    variants: dict[str, VariantSummary]
    comparisons: list[Comparison] = field(default_factory=list)
    skipped_without_endpoint: int = 0


# --- reading the window ---------------------------------------------------------------------------------------------

def load_observations(since: dt.datetime, until: dt.datetime) -> tuple[list[Observation], int]:
    """The window's transactions with an endpoint, and how many had none (no endpoint was configured)."""
    records = list(transactions.between(since, until))
    routed = [Observation.from_record(r) for r in records if r.endpoint_name]
    return routed, len(records) - len(routed)


# --- per-variant summaries ------------------------------------------------------------------------------------------

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
        accuracy_ci95=_wilson(correct, len(judged)) if judged else None,
    )


def _wilson(successes: int, trials: int) -> tuple[float, float]:
    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


# --- tests ----------------------------------------------------------------------------------------------------------

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


def compare(groups: dict[str, list[Observation]], control: str, thresholds: Thresholds) -> list[Comparison]:
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
                 thresholds: Thresholds, control: str | None = None, skipped: int = 0) -> Report:
    groups = by_endpoint(observations)
    if control is not None and control not in groups:
        raise ReportError(f"control {control!r} has no transactions in the window; "
                          f"variants seen: {', '.join(groups) or 'none'}")
    chosen = control or (max(groups, key=lambda name: len(groups[name])) if groups else None)
    return Report(stage=stage, since=since.isoformat(), until=until.isoformat(), thresholds=thresholds,
                  control=chosen, variants={name: summarize(name, group) for name, group in groups.items()},
                  comparisons=compare(groups, chosen, thresholds) if chosen else [],
                  skipped_without_endpoint=skipped)


# --- output ---------------------------------------------------------------------------------------------------------

def headline(report: Report) -> str:
    if not report.variants:
        return f"no routed transactions between {report.since} and {report.until}"
    if not report.comparisons:
        return f"only one variant ({report.control}) in the window: nothing to compare"
    return "; ".join(c.verdict for c in report.comparisons)


def _guardrail(name: str, result: TestResult) -> str:
    if result.p_value is None:
        return f"{name}: {result.note}"
    finding = "differs" if result.significant else "no significant difference"
    return f"{name}: {finding} ({result.note}, {result.test} p={result.p_value:.3g})"


def print_summary(report: Report, console: Console) -> None:
    table = Table(title=f"A/B variants, stage {report.stage}, {report.since} .. {report.until}")
    for column in ("endpoint", "model versions", "requests", "error rate", "p50 ms", "p95 ms", "mean top score",
                   "feedback", "accuracy (95% CI)"):
        table.add_column(column)
    for s in report.variants.values():
        accuracy = f"{s.accuracy:.3f} ({s.accuracy_ci95[0]:.3f}-{s.accuracy_ci95[1]:.3f})" if s.accuracy_ci95 else "-"
        table.add_row(s.endpoint + (" (control)" if s.endpoint == report.control else ""), ", ".join(s.model_versions),
                      str(s.requests), f"{s.error_rate:.2%}", _ms(s.latency_p50_ms), _ms(s.latency_p95_ms),
                      "-" if s.mean_confidence is None else f"{s.mean_confidence:.3f}", str(s.feedback), accuracy)
    console.print(table)
    for comparison in report.comparisons:
        console.print(f"[bold]{comparison.verdict}[/bold]  (alpha={comparison.alpha:g} per comparison)")
        for name in ("error_rate", "latency", "labels"):
            console.print(f"  {_guardrail(name, getattr(comparison, name))}")
    if not report.comparisons:
        console.print(headline(report))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def plot(report: Report, groups: dict[str, list[Observation]], path: Path) -> None:
    """Four panels: requests and error rate, latency, label shares, accuracy with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.variants)
    summaries = [report.variants[name] for name in names]
    figure, ((requests, latency), (labels, accuracy)) = plt.subplots(2, 2, figsize=(13, 9))
    bars = requests.bar(names, [s.requests for s in summaries], color="tab:blue")
    requests.bar_label(bars, [f"{s.error_rate:.1%} errors" for s in summaries])
    requests.set_title("Requests (label: error rate)")
    answered = [[o.latency_ms for o in groups[name] if o.ok] or [np.nan] for name in names]
    latency.boxplot(answered, tick_labels=names, whis=(5, 95), showfliers=False)
    latency.set_title("Latency of answered requests, ms (box: quartiles, whiskers: p5-p95)")
    _plot_label_shares(labels, summaries)
    _plot_accuracy(accuracy, summaries)
    figure.suptitle(f"A/B report, stage {report.stage}: {report.since[:16]} .. {report.until[:16]} UTC\n"
                    f"{headline(report)}", fontsize=10, wrap=True)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_label_shares(axes: Any, summaries: Sequence[VariantSummary]) -> None:
    labels = sorted({label for s in summaries for label in s.label_counts})
    width = 0.8 / max(1, len(summaries))
    for i, summary in enumerate(summaries):
        total = sum(summary.label_counts.values()) or 1
        positions = np.arange(len(labels)) + i * width
        axes.bar(positions, [summary.label_counts.get(label, 0) / total for label in labels], width,
                 label=summary.endpoint)
    axes.set_xticks(np.arange(len(labels)) + width * (len(summaries) - 1) / 2, labels)
    axes.set_title("Predicted label shares")
    axes.legend()


def _plot_accuracy(axes: Any, summaries: Sequence[VariantSummary]) -> None:
    judged = [s for s in summaries if s.accuracy is not None and s.accuracy_ci95 is not None]
    axes.set_title("Accuracy on transactions with feedback (95% Wilson interval)")
    if not judged:
        axes.text(0.5, 0.5, "no feedback in the window", ha="center", va="center", transform=axes.transAxes)
        return
    positions = np.arange(len(judged))
    errors = [[s.accuracy - s.accuracy_ci95[0] for s in judged], [s.accuracy_ci95[1] - s.accuracy for s in judged]]
    axes.errorbar(positions, [s.accuracy for s in judged], yerr=errors, fmt="o", capsize=6)
    for position, s in zip(positions, judged, strict=True):
        axes.annotate(f"{s.accuracy:.3f}, n={s.feedback}", (position, s.accuracy), textcoords="offset points",
                      xytext=(10, 0))
    axes.set_xticks(positions, [s.endpoint for s in judged])
    axes.set_xlim(-0.5, len(judged) - 0.5)
    axes.set_ylim(0, 1.05)


def write_report(report: Report, groups: dict[str, list[Observation]], output: Path) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    json_path, png_path = output / f"{REPORT_NAME}.json", output / f"{REPORT_NAME}.png"
    json_path.write_text(json.dumps({**asdict(report), "verdict": headline(report)}, indent=2) + "\n")
    plot(report, groups, png_path)
    return json_path, png_path


# --- command line ---------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local", help="Chalice stage whose table is read (default: local)")
    parser.add_argument("--hours", type=float, default=24.0, help="the window: the last N hours (default: 24)")
    parser.add_argument("--control", help="the variant the others are compared with (default: most requests)")
    parser.add_argument("--alpha", type=float, default=Thresholds.alpha, help="significance level (default: 0.05)")
    parser.add_argument("--min-feedback", type=int, default=Thresholds.min_feedback,
                        help="labelled transactions per variant before accuracy is compared (default: 30)")
    parser.add_argument("--min-requests", type=int, default=Thresholds.min_requests,
                        help="requests per variant before errors, latency and labels are compared (default: 30)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "artifacts" / "ab")
    parser.add_argument("--local-state-dir", type=Path, default=REPO_ROOT / "artifacts" / "local",
                        help="state directory of the running `make local` (local stage only)")
    args = parser.parse_args(argv)
    if args.hours <= 0 or not 0 < args.alpha < 1 or args.min_feedback < 1 or args.min_requests < 1:
        parser.error("--hours must be > 0, --alpha in (0, 1), --min-feedback and --min-requests >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    until = dt.datetime.now(dt.UTC)
    since = until - dt.timedelta(hours=args.hours)
    try:
        use_stage(args.stage, args.local_state_dir)
        observations, skipped = load_observations(since, until)
        report = build_report(observations, args.stage, since, until,
                              Thresholds(args.alpha, args.min_feedback, args.min_requests), args.control, skipped)
    except (ReportError, transactions.TableUnavailable) as exc:
        print(f"ab-report: {exc}", file=sys.stderr)
        return 1
    json_path, png_path = write_report(report, by_endpoint(observations), args.output)
    print_summary(report, Console(width=None if sys.stdout.isatty() else 150))
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
