"""Evaluate a trained model folder on any data file: accuracy, macro-F1, per-class scores, confusion matrix.

    python -m training_jobs.evaluate --model-dir artifacts/model --data test.tsv [--json] [--plot]
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

from model.labels import LabelMap
from training_jobs.data import DataError, Example, clean, read_examples


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
    return "\n".join(lines)


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


def evaluate_model_dir(model_dir: Path, examples: Sequence[Example], batch_size: int = 64) -> dict[str, Any]:
    """The report of one model folder on `examples`, tagged with its version: what every comparison runs."""
    from model.predict import TorchPredictor

    predictor = TorchPredictor(model_dir, batch_size=batch_size)
    metrics = evaluate_probabilities(predictor.predict_proba([ex.title for ex in examples]), examples, predictor.labels)
    metrics["model_version"] = predictor.metadata["model_version"]
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a trained model folder on a TSV/CSV data file.")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="NLP-100/corpus TSV or UCI newsCorpora.csv")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--plot", type=Path, nargs="?", const=True, default=None,
                        help="write a confusion-matrix PNG (default: next to the model)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    try:
        examples, _ = clean(read_examples(args.data), dedupe=False)
        metrics = evaluate_model_dir(args.model_dir, examples, args.batch_size)
    except (DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics["data"] = str(args.data)
    if args.plot:
        target = args.model_dir / f"confusion_{args.data.name.split('.')[0]}.png" if args.plot is True else args.plot
        metrics["confusion_png"] = str(plot_confusion(metrics, target, f"{args.data.name}"))
    title = f"{args.data} · model {metrics['model_version']}"
    print(json.dumps(metrics) if args.json else format_report(metrics, title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
