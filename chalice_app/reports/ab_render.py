"""The A/B report shown: the summary table, verdicts and replay on the console, ab-report.json and the six-panel
ab-report.png (the window's four, and the replay's cross table and accuracy on the reviewed headlines)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from chalice_app.reports.ab_replay import Replay, ReplayComparison
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
    elif report.replay is None:
        console.print("replay: off (--replay 0): the variants are compared on the requests each one got")
    else:
        print_replay(report.replay, console)


def print_replay(replay: Replay, console: Console) -> None:
    console.print(f"[bold]Replay[/bold]: the same {len(replay.traffic)} headlines of the window's traffic (sample of "
                  f"up to {replay.requested}, seed {replay.seed}) and {len(replay.reviewed)} reviewed headlines sent "
                  "to every variant")
    for name, why in replay.failed.items():
        console.print(f"  [red]{name}: no answers[/red]: {why}")
    if not replay.comparisons:
        return
    table = Table(title="Replay: each variant against the control on the same headlines")
    for column in ("treatment vs control", "traffic: agreement (95% CI)", "kappa", "reviewed", "agreement",
                   "accuracy control", "accuracy treatment", "only treatment / only control right", "McNemar p"):
        table.add_column(column)
    for c in replay.comparisons:
        accuracy = c.reviewed_accuracy
        table.add_row(f"{c.treatment} vs {c.control}", _agreement(c.traffic.agree, c.traffic.headlines,
                                                                   c.traffic.rate_ci95),
                      _number(c.traffic.kappa), str(c.reviewed.headlines),
                      _agreement(c.reviewed.agree, c.reviewed.headlines, None), _number(accuracy.control_accuracy),
                      _number(accuracy.treatment_accuracy), f"{accuracy.treatment_only} / {accuracy.control_only}",
                      _number(accuracy.mcnemar_p, ".3g"))
    console.print(table)
    for c in replay.comparisons:
        console.print(_cross_table(c))
    if replay.reviewed:
        console.print(replay.note)


def _agreement(agree: int, headlines: int, ci95: tuple[float, float] | None) -> str:
    if not headlines:
        return "-"
    interval = f" ({ci95[0]:.3f}-{ci95[1]:.3f})" if ci95 else ""
    return f"{agree}/{headlines} = {agree / headlines:.3f}{interval}"


def _number(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _cross_table(comparison: ReplayComparison) -> Table:
    agreement = comparison.traffic
    table = Table(title=f"Replayed traffic: {comparison.control} (rows) x {comparison.treatment} (columns)")
    table.add_column("")
    for label in agreement.labels:
        table.add_column(label, justify="right")
    for label, row in zip(agreement.labels, agreement.cross_table, strict=True):
        table.add_row(label, *map(str, row))
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def plot(report: Report, groups: dict[str, list[Observation]], path: Path) -> None:
    """Six panels: requests and error rate, latency, label shares, accuracy with its 95% interval; the replay's cross
    table of the first treatment and both variants' accuracy on the reviewed headlines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.variants)
    summaries = [report.variants[name] for name in names]
    figure, ((requests, latency, cross), (labels, accuracy, reviewed)) = plt.subplots(2, 3, figsize=(19, 9))
    bars = requests.bar(names, [s.requests for s in summaries], color="tab:blue")
    requests.bar_label(bars, [f"{s.error_rate:.1%} errors" for s in summaries])
    requests.set_title("Requests (label: error rate)")
    answered = [[o.latency_ms for o in groups[name] if o.ok] or [np.nan] for name in names]
    latency.boxplot(answered, tick_labels=names, whis=(5, 95), showfliers=False)
    latency.set_title("Latency of answered requests, ms (box: quartiles, whiskers: p5-p95)")
    _plot_label_shares(labels, summaries)
    _plot_accuracy(accuracy, summaries)
    _plot_cross_table(cross, report.replay)
    _plot_reviewed(reviewed, report.replay)
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


def _drawable(axes: Any, replay: Replay | None) -> Replay | None:
    """The replay when it has a comparison to draw; else None, and the panel says why."""
    if replay is not None and replay.comparisons:
        return replay
    why = "no replay (--replay 0, or one variant)" if replay is None else "replay: no comparison, " + (
        ", ".join(f"{name} failed" for name in replay.failed) or "nothing replayed")
    axes.text(0.5, 0.5, why, ha="center", va="center", transform=axes.transAxes, wrap=True)
    axes.set_axis_off()
    return None


def _plot_cross_table(axes: Any, shown: Replay | None) -> None:
    replay = _drawable(axes, shown)
    if replay is None:
        return
    comparison = replay.comparisons[0]
    agreement = comparison.traffic
    table = np.array(agreement.cross_table)
    axes.imshow(table, cmap="Blues")
    for (row, column), count in np.ndenumerate(table):
        axes.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > table.max() / 2 else "black")
    axes.set_xticks(range(len(agreement.labels)), agreement.labels, rotation=30)
    axes.set_yticks(range(len(agreement.labels)), agreement.labels)
    axes.set(xlabel=comparison.treatment, ylabel=comparison.control)
    summary = "nothing sampled" if agreement.rate is None else (
        f"agreement {agreement.rate:.3f}, kappa {'-' if agreement.kappa is None else f'{agreement.kappa:.3f}'}")
    axes.set_title(f"Replay: the same {agreement.headlines} headlines of the traffic\n{summary}")


def _plot_reviewed(axes: Any, shown: Replay | None) -> None:
    replay = _drawable(axes, shown)
    if replay is None:
        return
    axes.set_title("Replay: accuracy on the reviewed headlines (operators' labels)")
    if not replay.reviewed:
        axes.text(0.5, 0.5, "no reviewed headlines in the window", ha="center", va="center", transform=axes.transAxes)
        return
    first = replay.comparisons[0].reviewed_accuracy
    names = [replay.control, *(c.treatment for c in replay.comparisons)]
    values = [first.control_accuracy or 0.0, *(c.reviewed_accuracy.treatment_accuracy or 0.0
                                               for c in replay.comparisons)]
    bars = axes.bar(names, values, color=["tab:gray", *["tab:orange"] * len(replay.comparisons)])
    axes.bar_label(bars, [f"{values[0]:.3f} (control)", *(
        f"{value:.3f}; agrees on {c.reviewed.agree}/{c.reviewed.headlines}, "
        f"McNemar p={c.reviewed_accuracy.mcnemar_p:.3g}"
        for value, c in zip(values[1:], replay.comparisons, strict=True))])
    axes.set_ylim(0, 1.1)
    axes.set_xlabel(f"n={first.headlines}; fit, not evidence, if the treatment trained on these labels")


def write_report(report: Report, groups: dict[str, list[Observation]], output: Path) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    json_path, png_path = output / f"{REPORT_NAME}.json", output / f"{REPORT_NAME}.png"
    json_path.write_text(json.dumps({**asdict(report), "verdict": headline(report)}, indent=2) + "\n")
    plot(report, groups, png_path)
    return json_path, png_path
