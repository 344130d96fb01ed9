"""The A/B report shown: the summary table and verdicts on the console, ab-report.json and the four-panel
ab-report.png."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from chalice_app.reports.ab_stats import Observation, Report, TestResult, VariantSummary

REPORT_NAME = "ab-report"


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
