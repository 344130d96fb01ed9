"""The simulated week's results: judge accuracy against labels given, per arm, budget and seed; the means, the
issue's two done-when checks, a markdown table and the learning-curve plot.

Every run is one warm-started candidate (training_jobs.warm_start). The control (`none`: no new labels, the same
fine-tune on the replay sample alone) is each curve's point at 0 labels, so a gain is what the labels added.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REVIEW, RANDOM, NONE = "review", "random", "none"
GAIN_AT_MOST_LABELS = 0.01  # the review queue's largest budget over no labels, on the judge
REVIEW_OVER_RANDOM = 0.005  # the review queue over random labels at REVIEW_OVER_RANDOM_AT
REVIEW_OVER_RANDOM_AT = 200


@dataclass(frozen=True)
class Run:
    """One candidate: which arm chose its labels, how many, the seed, and how it scored."""

    arm: str
    labels: int
    seed: int
    judge_accuracy: float
    judge_macro_f1: float
    test_accuracy: float
    verdict: str  # the gate's, against the current model
    accuracy_gain_lower: float  # the gate's lower bound of the accuracy gain
    seconds: float  # the warm start's training time


def means(runs: Sequence[Run]) -> dict[tuple[str, int], dict[str, float]]:
    """Per (arm, labels): the mean and the spread (min, max) of judge accuracy over seeds, and the seed count."""
    groups: dict[tuple[str, int], list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.arm, run.labels].append(run)
    return {key: {"judge_accuracy": statistics.fmean(r.judge_accuracy for r in group),
                  "judge_macro_f1": statistics.fmean(r.judge_macro_f1 for r in group),
                  "test_accuracy": statistics.fmean(r.test_accuracy for r in group),
                  "min": min(r.judge_accuracy for r in group), "max": max(r.judge_accuracy for r in group),
                  "seeds": len(group)} for key, group in sorted(groups.items())}


def checks(runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """The issue's done-when, on mean judge accuracy: the largest review budget over no labels (>= 1 point), and the
    review queue over random labels at 200 (>= 0.5 point). A check whose runs are missing reads None."""
    table = means(runs)
    largest = max((labels for arm, labels in table if arm == REVIEW), default=None)

    def mean(arm: str, labels: int | None) -> float | None:
        return table[arm, labels]["judge_accuracy"] if (arm, labels) in table else None

    def check(gain: float | None, at_least: float, what: str) -> dict[str, Any]:
        return {"what": what, "gain": gain, "at_least": at_least, "met": None if gain is None else gain >= at_least}

    review_top, control = mean(REVIEW, largest), mean(NONE, 0)
    review_mid, random_mid = mean(REVIEW, REVIEW_OVER_RANDOM_AT), mean(RANDOM, REVIEW_OVER_RANDOM_AT)
    return {"review_over_none": check(None if review_top is None or control is None else review_top - control,
                                      GAIN_AT_MOST_LABELS, f"review queue at {largest} labels over no labels"),
            "review_over_random": check(None if review_mid is None or random_mid is None else review_mid - random_mid,
                                        REVIEW_OVER_RANDOM, f"review queue over random at {REVIEW_OVER_RANDOM_AT}")}


def summary(runs: Sequence[Run], context: dict[str, Any]) -> dict[str, Any]:
    return {**context, "runs": [asdict(run) for run in runs],
            "means": [{"arm": arm, "labels": labels, **values} for (arm, labels), values in means(runs).items()],
            "checks": checks(runs)}


def markdown(result: dict[str, Any]) -> str:
    """The report's tables: every run, then the means, then the checks."""
    lines = ["| arm | labels | seed | judge accuracy | judge macro-F1 | NLP-100 test | gate "
             "| accuracy gain, lower bound | training s |", "|---|---|---|---|---|---|---|---|---|"]
    for run in sorted(result["runs"], key=lambda r: (r["arm"], r["labels"], r["seed"])):
        lines.append(f"| {run['arm']} | {run['labels']} | {run['seed']} | {run['judge_accuracy']:.4f} | "
                     f"{run['judge_macro_f1']:.4f} | {run['test_accuracy']:.4f} | {run['verdict']} | "
                     f"{run['accuracy_gain_lower']:+.4f} | {run['seconds']:.0f} |")
    lines += ["", "| arm | labels | seeds | mean judge accuracy (min-max) | mean judge macro-F1 | mean NLP-100 test |",
              "|---|---|---|---|---|---|"]
    for row in result["means"]:
        lines.append(f"| {row['arm']} | {row['labels']} | {row['seeds']} | {row['judge_accuracy']:.4f} "
                     f"({row['min']:.4f}-{row['max']:.4f}) | {row['judge_macro_f1']:.4f} "
                     f"| {row['test_accuracy']:.4f} |")
    lines.append("")
    for check in result["checks"].values():
        gain = "not measured" if check["gain"] is None else f"{100 * check['gain']:+.2f} points"
        verdict = {True: "met", False: "not met", None: "not measured"}[check["met"]]
        lines.append(f"- {check['what']}: {gain} (at least {100 * check['at_least']:+.1f}): **{verdict}**")
    return "\n".join(lines) + "\n"


def plot(runs: Sequence[Run], path: Path, title: str) -> Path:
    """Judge accuracy against labels given: each arm's mean line (from the control at 0), its seeds as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = means(runs)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    control = table.get((NONE, 0))
    for arm, colour in ((REVIEW, "tab:blue"), (RANDOM, "tab:orange")):
        points = sorted((labels, values["judge_accuracy"]) for (a, labels), values in table.items() if a == arm)
        if control:
            points.insert(0, (0, control["judge_accuracy"]))
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", color=colour, label=f"{arm} (mean)")
        seeds = [(r.labels, r.judge_accuracy) for r in runs if r.arm == arm]
        if seeds:
            ax.scatter(*zip(*seeds, strict=True), color=colour, alpha=0.35, s=18)
    no_labels = [r.judge_accuracy for r in runs if r.arm == NONE]
    if no_labels:
        ax.scatter([0] * len(no_labels), no_labels, color="grey", alpha=0.5, s=18, label="no new labels (seeds)")
    ax.set(xlabel="labels given", ylabel="story-disjoint judge accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
