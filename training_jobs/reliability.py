"""Whether scores mean what they say: calibration error, Brier score, NLL, and answering only when sure.

ECE over 15 equal-width bins, Brier, NLL clipped as scikit-learn's `log_loss`, and coverage and accuracy when
answers below a threshold are flagged "uncertain" (definitions: docs/training.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ECE_BINS = 15
COVERAGE_POINTS = (1.0, 0.95, 0.9, 0.8)


def _arrays(probabilities: np.ndarray, y_true: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    probabilities, y_true = np.asarray(probabilities, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
    if probabilities.ndim != 2 or len(probabilities) != len(y_true) or not len(y_true):
        raise ValueError(f"{probabilities.shape} probabilities for {len(y_true)} labels")
    return probabilities, y_true


def reliability_bins(probabilities: np.ndarray, y_true: Sequence[int], bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Per equal-width bin of the top score: its bounds, count, mean top score and accuracy (empty bins kept)."""
    probabilities, y_true = _arrays(probabilities, y_true)
    top, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == y_true
    index = np.minimum((top * bins).astype(int), bins - 1)  # a top score of exactly 1 belongs to the last bin
    rows = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        rows.append({"low": b / bins, "high": (b + 1) / bins, "count": count,
                     "confidence": float(top[members].mean()) if count else None,
                     "accuracy": float(correct[members].mean()) if count else None})
    return rows


def expected_calibration_error(probabilities: np.ndarray, y_true: Sequence[int], bins: int = ECE_BINS) -> float:
    rows = reliability_bins(probabilities, y_true, bins)
    total = sum(row["count"] for row in rows)
    return float(sum(row["count"] / total * abs(row["accuracy"] - row["confidence"]) for row in rows if row["count"]))


def brier_score(probabilities: np.ndarray, y_true: Sequence[int]) -> float:
    probabilities, y_true = _arrays(probabilities, y_true)
    onehot = np.eye(probabilities.shape[1])[y_true]
    return float(((probabilities - onehot) ** 2).sum(axis=1).mean())


def negative_log_likelihood(probabilities: np.ndarray, y_true: Sequence[int]) -> float:
    probabilities, y_true = _arrays(probabilities, y_true)
    return float(-np.log(np.clip(probabilities[np.arange(len(y_true)), y_true], 1e-15, 1.0)).mean())


def calibration_summary(probabilities: np.ndarray, y_true: Sequence[int]) -> dict[str, float]:
    """ECE, Brier, NLL, mean top score and accuracy of one set of scores."""
    probabilities, y_true = _arrays(probabilities, y_true)
    return {"ece": expected_calibration_error(probabilities, y_true), "brier": brier_score(probabilities, y_true),
            "nll": negative_log_likelihood(probabilities, y_true),
            "mean_top_score": float(probabilities.max(axis=1).mean()),
            "accuracy": float((probabilities.argmax(axis=1) == y_true).mean())}


def selective(probabilities: np.ndarray, y_true: Sequence[int], threshold: float) -> dict[str, float | None]:
    """Coverage and accuracy when headlines with a top score below `threshold` are flagged uncertain."""
    probabilities, y_true = _arrays(probabilities, y_true)
    answered = probabilities.max(axis=1) >= threshold
    correct = probabilities.argmax(axis=1) == y_true
    return {"threshold": threshold, "coverage": float(answered.mean()),
            "accuracy": float(correct[answered].mean()) if answered.any() else None,
            "flagged_accuracy": float(correct[~answered].mean()) if (~answered).any() else None}


def coverage_curve(probabilities: np.ndarray, y_true: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coverage, accuracy, threshold) when answering the k most confident headlines, k = 1..n."""
    probabilities, y_true = _arrays(probabilities, y_true)
    top = probabilities.max(axis=1)
    order = np.argsort(-top, kind="stable")
    correct = (probabilities.argmax(axis=1) == y_true)[order]
    answered = np.arange(1, len(order) + 1)
    return answered / len(order), np.cumsum(correct) / answered, top[order]


def accuracy_at_coverage(probabilities: np.ndarray, y_true: Sequence[int],
                         points: Sequence[float] = COVERAGE_POINTS) -> dict[str, float]:
    """Accuracy on the most confident share of the headlines, e.g. {"0.9": accuracy at 90% coverage}."""
    coverage, accuracy, _ = coverage_curve(probabilities, y_true)
    return {f"{point:g}": float(accuracy[max(0, int(np.ceil(point * len(coverage))) - 1)]) for point in points}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_reliability(curves: dict[str, np.ndarray], y_true: Sequence[int], path: Path, title: str) -> Path:
    """Reliability diagram: accuracy against mean top score per bin, one line per named set of scores."""
    plt = _pyplot()
    fig, (diagram, counts) = plt.subplots(2, 1, figsize=(5.2, 6), height_ratios=(3, 1), sharex=True)
    diagram.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, probabilities in curves.items():
        rows = [row for row in reliability_bins(probabilities, y_true) if row["count"]]
        ece = expected_calibration_error(probabilities, y_true)
        diagram.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o",
                     label=f"{name} (ECE {ece:.3f})")
        counts.plot([r["confidence"] for r in rows], [r["count"] for r in rows], marker=".", label=name)
    diagram.set(ylabel="accuracy", xlim=(0.2, 1.0), ylim=(0.0, 1.02), title=title)
    diagram.legend(loc="upper left", fontsize=8)
    counts.set(xlabel=f"mean top score per bin ({ECE_BINS} equal-width bins)", ylabel="headlines", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_coverage(probabilities: np.ndarray, y_true: Sequence[int], threshold: float, path: Path, title: str) -> Path:
    """Accuracy on the answered headlines against coverage, with the uncertainty threshold marked."""
    plt = _pyplot()
    coverage, accuracy, _ = coverage_curve(probabilities, y_true)
    at = selective(probabilities, y_true, threshold)
    fig, ax = plt.subplots(figsize=(5.2, 4))
    ax.plot(coverage, accuracy)
    if at["accuracy"] is not None:
        ax.scatter([at["coverage"]], [at["accuracy"]], color="C3", zorder=3,
                   label=f"uncertain below {threshold:g}: coverage {at['coverage']:.1%}, accuracy {at['accuracy']:.1%}")
        ax.legend(loc="lower left", fontsize=8)
    ax.set(xlabel="coverage (share answered without the uncertain flag)", ylabel="accuracy on the answered",
           xlim=(0.5, 1.0), ylim=(min(0.85, float(accuracy[-1]) - 0.02), 1.0), title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
