"""The drift baseline of a model folder (`drift_baseline.json`): what normal traffic looks like to this model.

    python -m training_jobs.drift_baseline --model-dir artifacts/model [--data DIR] [--runtime auto]

Fixed-bin histograms of the served (calibrated) validation predictions, binned by the rule the drift job uses, so
the job compares like with like (docs/drift.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.artifact import DRIFT_BASELINE_FILE, read_metadata
from model.calibration import UNCERTAIN_BELOW
from model.labels import LabelMap
from model.runtime import AUTO, RUNTIMES, TOKENIZER_FILE, RuntimeUnavailableError, load_predictor, resolve_runtime
from training_jobs.config import default_data_dir
from training_jobs.data import DataError, splits_of_model

log = logging.getLogger("training_jobs.drift_baseline")
SCHEMA_VERSION = 1
BINS = 10
SHARE_BELOW_STEPS = 100


def quantile_edges(values: Sequence[float], bins: int = BINS) -> list[float]:
    """Interior bin edges at the quantiles of `values`; edges at or below the minimum would leave bin 0 empty."""
    array = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(array, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(edge) for edge in edges if edge > array.min()]


def numeric_histogram(values: Sequence[float], bins: int = BINS) -> dict[str, Any]:
    edges = quantile_edges(values, bins)
    counts = np.bincount(np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="right"),
                         minlength=len(edges) + 1)
    return {"kind": "numeric", "edges": edges, "counts": counts.tolist()}


def categorical_histogram(values: Sequence[str], categories: Sequence[str]) -> dict[str, Any]:
    return {"kind": "categorical", "categories": list(categories),
            "counts": [sum(value == category for value in values) for category in categories]}


def collapsed(title: str) -> str:
    return " ".join(title.split())


def token_lengths(model_dir: Path, titles: Sequence[str]) -> list[int]:
    """Untruncated token counts with the folder's own fast tokenizer (its saved truncation switched off)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / TOKENIZER_FILE))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [len(encoding.ids) for encoding in tokenizer.encode_batch(list(titles))]


def build_baseline(titles: Sequence[str], probabilities: np.ndarray, labels: LabelMap, tokens: Sequence[int],
                   provenance: dict[str, Any]) -> dict[str, Any]:
    """The baseline document from one held-out split scored by the model."""
    if len(titles) != len(probabilities) or len(titles) != len(tokens) or not titles:
        raise ValueError(f"{len(titles)} titles, {len(probabilities)} predictions, {len(tokens)} token counts")
    top_scores = probabilities.max(axis=1)
    predicted = [labels.name(int(i)) for i in probabilities.argmax(axis=1)]
    titles = [collapsed(title) for title in titles]
    return {
        "schema_version": SCHEMA_VERSION,
        **provenance,
        "samples": len(titles),
        "low_confidence": {"threshold": UNCERTAIN_BELOW, "share": float(np.mean(top_scores < UNCERTAIN_BELOW)),
                           "share_below": [round(float(np.mean(top_scores < k / SHARE_BELOW_STEPS)), 6)
                                           for k in range(SHARE_BELOW_STEPS + 1)]},
        "features": {
            "label": categorical_histogram(predicted, labels.names),
            "top_score": numeric_histogram(top_scores.tolist()),
            "title_chars": numeric_histogram([len(title) for title in titles]),
            "title_words": numeric_histogram([len(title.split()) for title in titles]),
            "token_length": numeric_histogram(list(tokens)),
        },
    }


def write_baseline(model_dir: Path, titles: Sequence[str], probabilities: np.ndarray, labels: LabelMap,
                   source: str, runtime: str) -> Path:
    """Build the baseline of a scored validation split and write it into the (already written) model folder."""
    model_dir = Path(model_dir)
    baseline = build_baseline(titles, probabilities, labels, token_lengths(model_dir, titles), {
        "model_version": read_metadata(model_dir)["model_version"], "split": "valid", "data": source,
        "runtime": runtime, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    path = model_dir / DRIFT_BASELINE_FILE
    path.write_text(json.dumps(baseline, indent=1) + "\n")
    return path


def baseline_for_model(model_dir: Path, data: Path, runtime: str = AUTO) -> Path:
    """Score the validation split training saw with the model folder, in the runtime that serves it by default."""
    splits = splits_of_model(model_dir, data)
    titles = [ex.title for ex in splits.valid]
    runtime = resolve_runtime(model_dir, runtime)
    predictor = load_predictor(model_dir, runtime)
    return write_baseline(model_dir, titles, predictor.predict_proba(titles), predictor.labels, splits.source, runtime)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="a model folder made by training_jobs.train")
    parser.add_argument("--data", type=Path, default=default_data_dir(),
                        help="the data the model was trained on: its validation split is the baseline")
    parser.add_argument("--runtime", default=AUTO, choices=(AUTO, *RUNTIMES),
                        help="default: the runtime the endpoint serves (int8 ONNX when the folder has it)")
    args = parser.parse_args(argv)
    try:
        path = baseline_for_model(args.model_dir, args.data, args.runtime)
    except (DataError, FileNotFoundError, RuntimeUnavailableError) as exc:
        print(f"drift baseline: {exc}", file=sys.stderr)
        return 2
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
