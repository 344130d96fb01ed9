"""Where the model goes wrong: a Markdown report with PNGs, written into the model folder.

    python -m training_jobs.error_analysis --model-dir artifacts/model --data test.tsv [--training-data DIR]

Confusion pairs, confident mistakes, accuracy per publisher and per-class calibration, on the served scores.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.artifact import read_metadata
from model.calibration import UNCERTAIN_BELOW, Calibration, CalibrationError
from model.labels import LabelMap
from model.runtime import RUNTIMES, TORCH, RuntimeUnavailableError
from training_jobs.data import DataError, Example, clean, read_examples, splits_of_model
from training_jobs.evaluate import HELD_OUT, STORY_DISJOINT, load_logits
from training_jobs.reliability import ECE_BINS, calibration_summary, selective

REPORT_FILE = "error_analysis.md"
PAIRS = 6
EXAMPLES_PER_PAIR = 3
CONFIDENT_MISTAKES = 12
MIN_PUBLISHER_ROWS = 15
PUBLISHERS_SHOWN = 15


@dataclass(frozen=True)
class Scored:
    """One evaluation set with the served probabilities of every headline."""

    name: str
    examples: list[Example]
    probabilities: np.ndarray
    y_true: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def top(self) -> np.ndarray:
        return self.probabilities.max(axis=1)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def confusion_pairs(scored: Scored, labels: LabelMap) -> list[str]:
    """The most frequent (true, predicted) mistakes, each with its most confidently wrong headlines."""
    wrong = np.flatnonzero(scored.predicted != scored.y_true)
    pairs = Counter((int(scored.y_true[i]), int(scored.predicted[i])) for i in wrong)
    lines = ["| true → predicted | mistakes | share of the true class | examples (served top score) |",
             "|---|---|---|---|"]
    for (true, predicted), count in pairs.most_common(PAIRS):
        members = [i for i in wrong if (scored.y_true[i], scored.predicted[i]) == (true, predicted)]
        members.sort(key=lambda i: -scored.top[i])
        examples = "<br>".join(f"{_cell(scored.examples[i].title)} ({scored.top[i]:.2f})"
                               for i in members[:EXAMPLES_PER_PAIR])
        lines.append(f"| {labels.name(true)} → {labels.name(predicted)} | {count} | "
                     f"{count / (scored.y_true == true).sum():.1%} | {examples} |")
    return lines


def confident_mistakes(scored: Scored, labels: LabelMap) -> list[str]:
    wrong = [int(i) for i in np.flatnonzero(scored.predicted != scored.y_true)]
    wrong.sort(key=lambda i: -scored.top[i])
    lines = ["| score | true | predicted | publisher | headline |", "|---|---|---|---|---|"]
    for i in wrong[:CONFIDENT_MISTAKES]:
        ex = scored.examples[i]
        lines.append(f"| {scored.top[i]:.3f} | {labels.name(int(scored.y_true[i]))} | "
                     f"{labels.name(int(scored.predicted[i]))} | {_cell(ex.publisher) or '-'} | {_cell(ex.title)} |")
    return lines


def publisher_accuracy(scored: Scored) -> list[tuple[str, int, float, float]]:
    """(publisher, rows, accuracy, mean top score) for publishers with enough rows, most rows first."""
    by_publisher: dict[str, list[int]] = {}
    for i, ex in enumerate(scored.examples):
        if ex.publisher:
            by_publisher.setdefault(ex.publisher, []).append(i)
    correct = scored.predicted == scored.y_true
    rows = [(name, len(members), float(correct[members].mean()), float(scored.top[members].mean()))
            for name, members in by_publisher.items() if len(members) >= MIN_PUBLISHER_ROWS]
    return sorted(rows, key=lambda row: (-row[1], row[0]))[:PUBLISHERS_SHOWN]


def class_calibration(scored: Scored, labels: LabelMap) -> list[dict[str, float | str]]:
    """Per class, one-vs-rest: mean predicted probability, observed frequency, ECE of that probability."""
    rows = []
    for k, name in enumerate(labels.names):
        p = scored.probabilities[:, k]
        is_k = (scored.y_true == k).astype(int)
        # ECE over the class's own probability: bins of p_k, accuracy = how often the class is the true one
        index = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
        ece = sum(abs(is_k[index == b].mean() - p[index == b].mean()) * (index == b).mean()
                  for b in range(ECE_BINS) if (index == b).any())
        rows.append({"class": name, "support": int(is_k.sum()), "mean_probability": float(p.mean()),
                     "frequency": float(is_k.mean()), "class_ece": float(ece)})
    return rows


def plot_class_calibration(scored: Scored, labels: LabelMap, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.4), sharey=True)
    edges = np.linspace(0, 1, 11)
    for k, (ax, name) in enumerate(zip(axes, labels.names, strict=True)):
        p, is_k = scored.probabilities[:, k], scored.y_true == k
        index = np.minimum(np.digitize(p, edges) - 1, len(edges) - 2)
        kept = [b for b in range(len(edges) - 1) if (index == b).sum() >= 5]
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        ax.plot([p[index == b].mean() for b in kept], [is_k[index == b].mean() for b in kept], marker="o")
        ax.set(title=name, xlabel=f"predicted P({name})", xlim=(0, 1), ylim=(0, 1))
    axes[0].set_ylabel("observed frequency (bins of ≥ 5)")
    fig.suptitle(f"per-class calibration: {scored.name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_publishers(rows: Sequence[tuple[str, int, float, float]], name: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r[2] for r in rows], height=0.4, label="accuracy")
    ax.barh(y + 0.2, [r[3] for r in rows], height=0.4, label="mean served top score")
    ax.set_yticks(y, [f"{r[0][:32]} ({r[1]})" for r in rows])
    ax.invert_yaxis()
    ax.set(xlim=(0.5, 1.0), title=f"accuracy per publisher: {name}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def section(scored: Scored, labels: LabelMap, model_dir: Path) -> list[str]:
    summary = calibration_summary(scored.probabilities, scored.y_true)
    uncertain = selective(scored.probabilities, scored.y_true, UNCERTAIN_BELOW)
    lines = [f"## {scored.name}", "",
             f"{len(scored.examples)} headlines; accuracy {summary['accuracy']:.4f}, ECE {summary['ece']:.4f}, "
             f"mean served top score {summary['mean_top_score']:.4f}. Uncertain below {UNCERTAIN_BELOW:g}: "
             f"{1 - uncertain['coverage']:.1%} flagged, accuracy of the rest "
             f"{uncertain['accuracy'] or 0:.4f}, of the flagged {uncertain['flagged_accuracy'] or 0:.4f}.", "",
             "### Confusion pairs", "", *confusion_pairs(scored, labels), "",
             "### Most confident mistakes", "", *confident_mistakes(scored, labels), ""]
    publishers = publisher_accuracy(scored)
    if publishers:
        png = plot_publishers(publishers, scored.name, model_dir / f"error_publishers_{scored.name}.png")
        lines += ["### Accuracy per publisher", "",
                  f"Publishers with at least {MIN_PUBLISHER_ROWS} headlines, most headlines first.", "",
                  "| publisher | headlines | accuracy | mean top score |", "|---|---|---|---|",
                  *(f"| {_cell(p)} | {n} | {acc:.3f} | {top:.3f} |" for p, n, acc, top in publishers), "",
                  f"![accuracy per publisher]({png.name})", ""]
    png = plot_class_calibration(scored, labels, model_dir / f"error_class_calibration_{scored.name}.png")
    lines += ["### Per-class calibration", "",
              "One-vs-rest: the mean predicted probability of a class against how often it is the true class, and "
              f"the ECE of that probability ({ECE_BINS} bins).", "",
              "| class | support | mean predicted | frequency | class ECE |", "|---|---|---|---|---|",
              *(f"| {r['class']} | {r['support']} | {r['mean_probability']:.3f} | {r['frequency']:.3f} | "
                f"{r['class_ece']:.4f} |" for r in class_calibration(scored, labels)), "",
              f"![per-class calibration]({png.name})", ""]
    return lines


def score(model_dir: Path, name: str, examples: list[Example], runtime: str) -> Scored:
    logits, predictor = load_logits(model_dir, [ex.title for ex in examples], runtime)
    labels = predictor.labels
    return Scored(name, examples, predictor.calibration.probabilities(logits),
                  np.array([labels.index_of_category(ex.category) for ex in examples]))


def write_report(model_dir: Path, data: Path, training_data: Path | None, runtime: str = TORCH) -> Path:
    """The report on `data` and, given the data the model was trained on, on its judge and held-out publishers."""
    metadata = read_metadata(model_dir)
    labels = LabelMap.load(model_dir)
    sets = [score(model_dir, data.name.split(".")[0], clean(read_examples(data), dedupe=False)[0], runtime)]
    if training_data is not None:
        splits = splits_of_model(model_dir, training_data)
        sets += [score(model_dir, name, rows, runtime)
                 for name, rows in ((STORY_DISJOINT, splits.judge), (HELD_OUT, splits.held_out)) if rows]
    calibration = Calibration.load(model_dir).describe()
    lines = [f"# Error analysis · model {metadata['model_version']}", "",
             f"Runtime {runtime}; calibration {calibration}. Data: {data}"
             + (f"; the story-disjoint judge and held-out publishers rebuilt from {training_data}"
                if training_data is not None else "") + ".", ""]
    for scored in sets:
        lines += section(scored, labels, model_dir)
    path = model_dir / REPORT_FILE
    path.write_text("\n".join(lines))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the benchmark file, e.g. NLP-100 test.tsv")
    parser.add_argument("--training-data", type=Path,
                        help="the data the model was trained on (folder or file): adds its judge and held-out sets")
    parser.add_argument("--runtime", default=TORCH, choices=RUNTIMES)
    args = parser.parse_args(argv)
    try:
        path = write_report(args.model_dir, args.data, args.training_data, args.runtime)
    except (DataError, FileNotFoundError, CalibrationError, RuntimeUnavailableError) as exc:
        print(f"error analysis: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} and its PNGs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
