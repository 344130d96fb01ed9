"""Evaluate a trained model folder on any data file: accuracy, macro-F1, per class, confusion, calibration.

    python -m training_jobs.evaluate --model-dir artifacts/model --data test.tsv [--json] [--plot] [--runtime R]

Scores are the served ones (calibrated, any runtime), so what is measured is what the API answers
(docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from model.calibration import UNCERTAIN_BELOW, Calibration, CalibrationError, softmax
from model.labels import LabelMap
from model.runtime import RUNTIMES, TORCH, RuntimeUnavailableError
from training_jobs.data import DataError, Example, clean, read_examples, splits_of_model
from training_jobs.reliability import (
    accuracy_at_coverage,
    calibration_summary,
    plot_coverage,
    plot_reliability,
    selective,
)

HELD_OUT = "held_out_publishers"
STORY_DISJOINT = "story_disjoint"  # the judge: stories and publishers no model trained on (training_jobs.holdout)


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int], names: Sequence[str]) -> dict[str, Any]:
    """The report every evaluation prints and every artifact stores."""
    indices = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=indices, zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=indices, average="macro", zero_division=0)),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])} for i, name in enumerate(names)},
        "labels": list(names),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
    }


def format_report(metrics: dict[str, Any], title: str = "") -> str:
    names = metrics["labels"]
    width = max(len(n) for n in names) + 2
    lines = [title] if title else []
    lines.append(f"n={metrics['n']}  accuracy={metrics['accuracy']:.4f}  macro-F1={metrics['macro_f1']:.4f}")
    lines.append(f"{'':{width}}precision  recall  f1      support")
    for name in names:
        c = metrics["per_class"][name]
        lines.append(f"{name:{width}}{c['precision']:.4f}     {c['recall']:.4f}  {c['f1']:.4f}  {c['support']}")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * width + "".join(f"{n[:6]:>8}" for n in names))
    for name, row in zip(names, metrics["confusion_matrix"], strict=True):
        lines.append(f"{name:{width}}" + "".join(f"{v:>8}" for v in row))
    if "calibration" in metrics:
        lines += format_calibration(metrics)
    return "\n".join(lines)


def format_calibration(metrics: dict[str, Any]) -> list[str]:
    """ECE, Brier and NLL before and after calibration, and the coverage of the uncertain flag."""
    calibration = metrics["calibration"]
    lines = [f"calibration: {calibration['method']}, T = {calibration['temperature']:g}"
             + (f" ({calibration['note']})" if "note" in calibration else ""),
             f"{'':8}{'ECE':>8}{'Brier':>8}{'NLL':>8}{'mean top':>10}"]
    for when in ("before", "after"):
        c = calibration[when]
        lines.append(f"{when:8}{c['ece']:>8.4f}{c['brier']:>8.4f}{c['nll']:>8.4f}{c['mean_top_score']:>10.4f}")
    uncertain = metrics["uncertain"]
    answered = "-" if uncertain["accuracy"] is None else f"{uncertain['accuracy']:.4f}"
    lines.append(f"uncertain below {uncertain['threshold']:g}: coverage {uncertain['coverage']:.4f}, "
                 f"accuracy of the rest {answered}")
    lines.append("accuracy at coverage: " + ", ".join(
        f"{float(k):.0%} {v:.4f}" for k, v in metrics["accuracy_at_coverage"].items()))
    return lines


def plot_confusion(metrics: dict[str, Any], path: Path, title: str = "Confusion matrix") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.array(metrics["confusion_matrix"])
    names = metrics["labels"]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    ax.set_title(f"{title}\naccuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def evaluate_probabilities(probabilities: np.ndarray, examples: Sequence[Example], labels: LabelMap) -> dict[str, Any]:
    y_true = [labels.index_of_category(ex.category) for ex in examples]
    return compute_metrics(y_true, probabilities.argmax(axis=1).tolist(), labels.names)


def evaluate_logits(logits: np.ndarray, examples: Sequence[Example], labels: LabelMap,
                    calibration: Calibration, uncertain_below: float = UNCERTAIN_BELOW) -> dict[str, Any]:
    """The report on served (calibrated) scores, with calibration before/after and selective answering."""
    y_true = [labels.index_of_category(ex.category) for ex in examples]
    calibrated = calibration.probabilities(logits)
    metrics = evaluate_probabilities(calibrated, examples, labels)
    metrics["calibration"] = {**calibration.describe(), "before": calibration_summary(softmax(logits), y_true),
                              "after": calibration_summary(calibrated, y_true)}
    metrics["uncertain"] = selective(calibrated, y_true, uncertain_below)
    metrics["accuracy_at_coverage"] = accuracy_at_coverage(calibrated, y_true)
    return metrics


def load_logits(model_dir: Path, titles: Sequence[str], runtime: str = TORCH,
                batch_size: int = 64) -> tuple[np.ndarray, Any]:
    """(logits, predictor) of one model folder in one runtime."""
    from model.runtime import load_predictor

    if runtime == TORCH:
        from model.predict import TorchPredictor

        predictor = TorchPredictor(model_dir, batch_size=batch_size)
    else:
        predictor = load_predictor(model_dir, runtime)
    return predictor.predict_logits(titles), predictor


def evaluate_model_dir(model_dir: Path, examples: Sequence[Example], batch_size: int = 64,
                       runtime: str = TORCH) -> dict[str, Any]:
    """The report of one model folder on `examples`, tagged with its version: what every comparison runs."""
    return score_model_dir(model_dir, examples, batch_size, runtime)[0]


def score_model_dir(model_dir: Path, examples: Sequence[Example], batch_size: int = 64,
                    runtime: str = TORCH) -> tuple[dict[str, Any], np.ndarray]:
    """The report of one model folder on `examples` and its answer (label index) per row: a paired comparison
    needs the rows, not only the totals."""
    logits, predictor = load_logits(model_dir, [ex.title for ex in examples], runtime, batch_size)
    metrics = evaluate_logits(logits, examples, predictor.labels, predictor.calibration)
    metrics["model_version"] = predictor.metadata["model_version"]
    metrics["runtime"] = runtime
    return metrics, predictor.calibration.probabilities(logits).argmax(axis=1)


def evaluation_examples(model_dir: Path, data: Path, subset: str | None = None) -> list[Example]:
    """The rows to evaluate on: all of `data`, or one held-out set (`STORY_DISJOINT`, `HELD_OUT`) of the model,
    rebuilt from the data it was trained on."""
    if subset is None:
        return clean(read_examples(data), dedupe=False)[0]
    splits = splits_of_model(model_dir, data)
    rows = {STORY_DISJOINT: splits.judge, HELD_OUT: splits.held_out}[subset]
    if not rows:
        raise DataError(f"{model_dir} has no {subset.replace('_', ' ')} set in {data} (see its training.json)")
    return rows


def write_plots(metrics: dict[str, Any], logits: np.ndarray, examples: Sequence[Example], labels: LabelMap,
                calibration: Calibration, confusion: Path, name: str) -> dict[str, str]:
    """Confusion matrix at `confusion`; reliability diagram and coverage curve beside it, named after `name`."""
    y_true = [labels.index_of_category(ex.category) for ex in examples]
    calibrated = calibration.probabilities(logits)
    folder = confusion.parent
    return {
        "confusion_png": str(plot_confusion(metrics, confusion, name)),
        "reliability_png": str(plot_reliability(
            {"uncalibrated": softmax(logits), f"temperature {calibration.temperature:g}": calibrated}, y_true,
            folder / f"reliability_{name}.png", f"reliability: {name}")),
        "coverage_png": str(plot_coverage(calibrated, y_true, metrics["uncertain"]["threshold"],
                                          folder / f"coverage_{name}.png", f"coverage-accuracy: {name}")),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a trained model folder on a TSV/CSV data file.")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True,
                        help="NLP-100/corpus TSV or UCI newsCorpora.csv; with a subset flag, the data the model was "
                             "trained on (folder or file)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--plot", type=Path, nargs="?", const=True, default=None,
                        help="write the confusion-matrix PNG there (default: into the model folder), the reliability "
                             "and coverage PNGs beside it")
    subset = parser.add_mutually_exclusive_group()
    subset.add_argument("--story-disjoint", dest="subset", action="store_const", const=STORY_DISJOINT,
                        help="the model's judge: stories and publishers it never trained on")
    subset.add_argument("--held-out-publishers", dest="subset", action="store_const", const=HELD_OUT,
                        help="the judge publishers' rows of stories the model trained on")
    parser.add_argument("--runtime", default=TORCH, choices=RUNTIMES, help="default: torch (fp32)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    try:
        examples = evaluation_examples(args.model_dir, args.data, args.subset)
        logits, predictor = load_logits(args.model_dir, [ex.title for ex in examples], args.runtime, args.batch_size)
    except (DataError, FileNotFoundError, CalibrationError, RuntimeUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = evaluate_logits(logits, examples, predictor.labels, predictor.calibration)
    metrics.update(model_version=predictor.metadata["model_version"], runtime=args.runtime, data=str(args.data))
    name = args.subset or args.data.name.split(".")[0]
    if args.plot:
        confusion = args.model_dir / f"confusion_{name}.png" if args.plot is True else args.plot
        metrics.update(write_plots(metrics, logits, examples, predictor.labels, predictor.calibration, confusion, name))
    subset = f" ({args.subset})" if args.subset else ""
    title = f"{args.data}{subset} · model {metrics['model_version']} · {args.runtime}"
    print(json.dumps(metrics) if args.json else format_report(metrics, title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
