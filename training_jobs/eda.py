"""A short data report: class counts, title and token lengths, duplicates removed, cross-split overlap.

    python -m training_jobs.eda [--data PATH] [--extra-data FILE ...] --output artifacts/eda
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.classifier import load_tokenizer
from model.encoders import embedded_encoder_dir
from model.labels import CATEGORY_TO_LABEL
from training_jobs.config import default_data_dir
from training_jobs.data import DataError, Splits, category_counts, load_splits, normalise_title


def _histograms(splits: Splits, token_lengths: list[int], output: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(CATEGORY_TO_LABEL.values())
    bottom = np.zeros(len(names))
    for split_name, examples in (("train", splits.train), ("valid", splits.valid), ("test", splits.test)):
        counts = np.array(list(category_counts(examples).values()))
        ax.bar(names, counts, bottom=bottom, label=split_name)
        bottom += counts
    ax.set(title="headlines per class", ylabel="count")
    ax.legend()
    paths.append(_save(fig, output / "class_counts.png"))
    token_bins = np.arange(max(token_lengths) + 2) - 0.5  # one bar per integer length
    for values, bins, name, xlabel in (
            ([len(ex.title) for ex in splits.train], 40, "title_length.png", "characters"),
            (token_lengths, token_bins, "token_length.png", "tokens (uncased WordPiece, with [CLS]/[SEP])")):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(values, bins=bins)
        for q in (50, 99, 99.9):
            ax.axvline(np.percentile(values, q), color="k", linestyle=":", linewidth=1)
        ax.set(title=f"training {xlabel.split()[0]} per headline (dotted: p50, p99, p99.9)", xlabel=xlabel)
        paths.append(_save(fig, output / name))
    return paths


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(splits: Splits, token_lengths: list[int]) -> str:
    """Markdown summary of what the model will be trained and judged on."""
    lines = [f"# Data report\n\nSource: {splits.source}\n", "| split | rows | " + " | ".join(
        f"{n} ({c})" for c, n in CATEGORY_TO_LABEL.items()) + " |", "|---" * (2 + len(CATEGORY_TO_LABEL)) + "|"]
    for name, examples in (("train", splits.train), ("valid", splits.valid), ("test", splits.test)):
        counts = category_counts(examples)
        lines.append(f"| {name} | {len(examples)} | " + " | ".join(str(counts[c]) for c in CATEGORY_TO_LABEL) + " |")
    lines.append("\n## Cleaning\n\n| file | read | empty titles | duplicates removed | of which conflicting labels |")
    lines.append("|---|---|---|---|---|")
    lines += [f"| {n} | {s.read} | {s.empty_titles} | {s.duplicates} | {s.conflicting_duplicates} |"
              for n, s in splits.stats.items()]
    train_keys = {normalise_title(ex.title) for ex in splits.train}
    overlap = sum(normalise_title(ex.title) in train_keys for ex in splits.test)
    chars = [len(ex.title) for ex in splits.train]
    lines += ["\n## Lengths (train)\n",
              f"- characters: median {np.median(chars):.0f}, p99 {np.percentile(chars, 99):.0f}, max {max(chars)}",
              f"- tokens: median {np.median(token_lengths):.0f}, p99 {np.percentile(token_lengths, 99):.0f}, "
              f"p99.9 {np.percentile(token_lengths, 99.9):.0f}, max {max(token_lengths)}",
              "\n## Overlap\n",
              f"- test headlines whose normalised title is also in train: {overlap} of {len(splits.test)}",
              "\n![class counts](class_counts.png)\n![title length](title_length.png)\n"
              "![token length](token_length.png)\n"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a data report with histograms.")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--extra-data", type=Path, nargs="*", default=[])
    parser.add_argument("--output", type=Path, default=Path("artifacts/eda"))
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    try:
        splits = load_splits(args.data, args.seed, args.extra_data)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tokenizer = load_tokenizer(embedded_encoder_dir())
    token_lengths = [len(ids) for ids in tokenizer([ex.title for ex in splits.train])["input_ids"]]
    args.output.mkdir(parents=True, exist_ok=True)
    _histograms(splits, token_lengths, args.output)
    (args.output / "report.md").write_text(report(splits, token_lengths))
    print(f"wrote {args.output / 'report.md'} and 3 PNGs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
