"""Fine-tune the headline classifier, locally on CPU/GPU or as a SageMaker training-job entry point.

    python -m training_jobs.train --base-model embedded --data ../shared/data/news_aggregator

On SageMaker the defaults come from SM_CHANNEL_TRAIN, SM_CHANNEL_TEST, SM_MODEL_DIR and
SM_OUTPUT_DATA_DIR, and hyperparameters arrive as `--name value` flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from torch import nn
from transformers import PreTrainedTokenizerBase

from model.artifact import copy_inference_code, write_metadata
from model.calibration import CALIBRATION_FILE, Calibration
from model.classifier import WEIGHTS_FILE, HeadlineClassifier, load_tokenizer
from model.encoders import EncoderUnavailableError, resolve_encoder, weights_sha256
from model.labels import LabelMap
from model.predict import predict_logits
from training_jobs import teacher_scores
from training_jobs.calibrate import fit_valid_calibration
from training_jobs.config import (
    LOCAL_SAMPLE_ROWS,
    REPO_ROOT,
    TEACHER_FILE,
    Hyperparameters,
    add_hyperparameter_arguments,
    default_data_dir,
    default_model_dir,
    hyperparameters_from_args,
)
from training_jobs.data import (
    DataError,
    Example,
    Splits,
    category_counts,
    clean,
    load_splits,
    normalise_title,
    read_examples,
)
from training_jobs.distributed import Distributed, init_distributed
from training_jobs.drift_baseline import write_baseline
from training_jobs.evaluate import HELD_OUT, STORY_DISJOINT, evaluate_logits, format_report, write_plots
from training_jobs.fit import Fitted, fit
from training_jobs.tfidf_baseline import baseline_metrics
from training_jobs.uci_archive import available

log = logging.getLogger("training_jobs.train")
MAX_LENGTH_QUANTILE = 99.9
MAX_LENGTH_CAP = 128


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(env.get("SM_CHANNEL_TRAIN") or default_data_dir()),
                        help="folder with the NLP-100 train/valid/test TSVs (used as-is), or one data file to split")
    parser.add_argument("--test-data", type=Path, default=env.get("SM_CHANNEL_TEST"),
                        help="file or folder of files that replaces the test split")
    parser.add_argument("--extra-data", type=Path, nargs="*", default=[],
                        help="more labelled files for training only (titles in valid/test are dropped)")
    parser.add_argument("--model-dir", type=Path, default=Path(env.get("SM_MODEL_DIR") or default_model_dir()))
    parser.add_argument("--output-data-dir", type=Path, default=env.get("SM_OUTPUT_DATA_DIR"),
                        help="also copy metrics and plots here")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training rows (smoke runs)")
    parser.add_argument("--sample", type=sample_size, default=0 if env.get("SM_CHANNEL_TRAIN") else LOCAL_SAMPLE_ROWS,
                        help="with one data file: a stratified, seeded sample of this many of its rows, taken after "
                             f"the split; `all` for every row (default: {LOCAL_SAMPLE_ROWS} locally, all on SageMaker)")
    parser.add_argument("--teacher", type=Path, default=TEACHER_FILE,
                        help="teacher scores to distil when --distill-weight is above 0 (`make teacher` rebuilds the "
                             "default file)")
    add_hyperparameter_arguments(parser)
    return parser.parse_args(argv)


def sample_size(value: str) -> int:
    """argparse type of --sample: a positive row count, or `all` (0)."""
    if value == "all":
        return 0
    if not value.isdigit() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of rows or `all`, got {value!r}")
    return int(value)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def choose_max_length(lengths: Sequence[int]) -> int:
    """The 99.9th percentile of token lengths, rounded up to a multiple of 8 and capped: never 512."""
    return int(min(MAX_LENGTH_CAP, max(16, math.ceil(np.percentile(lengths, MAX_LENGTH_QUANTILE) / 8) * 8)))


def _weights_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def _with_test_override(splits: Splits, test_data: Path | None) -> Splits:
    """Replace the test split by the files of a test channel, removing those titles from train/valid."""
    if test_data is None:
        return splits
    files = sorted(p for p in test_data.iterdir() if p.is_file()) if test_data.is_dir() else [test_data]
    if not files:
        raise DataError(f"{test_data}: no test files")
    test = [ex for path in files for ex in clean(read_examples(path), dedupe=False)[0]]
    held = {normalise_title(ex.title) for ex in test}
    return dataclasses.replace(
        splits, test=test, source=f"{splits.source}; test from {test_data}",
        train=[ex for ex in splits.train if normalise_title(ex.title) not in held],
        valid=[ex for ex in splits.valid if normalise_title(ex.title) not in held])


def plot_history(history: list[dict[str, float]], step_losses: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    window = max(1, len(step_losses) // 100)
    smooth = np.convolve(step_losses, np.ones(window) / window, mode="valid")
    left.plot(np.arange(len(smooth)) + window, smooth)
    left.set(title="training loss (moving average)", xlabel="step", ylabel="cross-entropy")
    epochs = [h["epoch"] for h in history]
    right.plot(epochs, [h["valid_accuracy"] for h in history], marker="o", label="valid accuracy")
    right.plot(epochs, [h["valid_macro_f1"] for h in history], marker="o", label="valid macro-F1")
    right.set(title="validation", xlabel="epoch", xticks=epochs)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass
class TrainingData:
    """The splits, tokenized as the model will see them."""

    splits: Splits
    encoder: str
    tokenizer: PreTrainedTokenizerBase
    max_length: int
    teacher: np.ndarray | None = None  # the teacher's probabilities per training row (NaN where it has none)
    teacher_meta: dict[str, Any] | None = None


@dataclass
class Scored:
    """The best model's logits on every evaluated split, its calibration and its metrics."""

    evaluated: dict[str, list[Example]]
    logits: dict[str, np.ndarray]
    calibration: Calibration
    metrics: dict[str, Any]


def train(args: argparse.Namespace) -> dict[str, Any] | None:
    """Train, keep the best epoch by validation macro-F1, calibrate, evaluate, and write the model folder.

    Under torchrun every rank trains on its share of the batches; rank 0 alone validates, writes and
    returns the result, the other ranks return None.
    """
    hp = hyperparameters_from_args(args)
    seed_everything(hp.seed)
    ddp = init_distributed()
    labels = LabelMap.default()
    data = load_training_data(args, hp)
    log.info("data: %s | train %d, valid %d, test %d | encoder %s | max_length %d | device %s",
             data.splits.source, len(data.splits.train), len(data.splits.valid), len(data.splits.test),
             data.encoder, data.max_length, ddp.device)
    model = HeadlineClassifier.from_encoder(data.encoder, len(labels), hp.dropout).to(ddp.device)
    if hp.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    fitted = fit(model, data.tokenizer, data.splits, data.max_length, labels, hp, ddp, data.teacher)
    ddp.close()
    if not ddp.is_main:
        return None
    model.load_state_dict(fitted.best_state)
    model.to("cpu").eval()
    scored = score(model, data, labels, hp, fitted.history)
    metadata = training_metadata(args, hp, data, model, scored, fitted, ddp)
    write_model_folder(args, model, data, labels, metadata, scored, fitted)
    return {"metadata": metadata, "metrics": scored.metrics}


def load_training_data(args: argparse.Namespace, hp: Hyperparameters) -> TrainingData:
    """The splits (the data downloaded first when there is none; sample, test channel and --limit applied), the
    encoder's tokenizer and the max length they call for."""
    data = available(args.data)
    splits = _with_test_override(
        load_splits(data, hp.seed, args.extra_data, hp.holdout_publishers, hp.judge_stories, args.sample),
        args.test_data)
    if args.limit:
        splits.train = splits.train[: args.limit]
    encoder = resolve_encoder(hp.base_model)
    tokenizer = load_tokenizer(encoder)
    untruncated = [len(ids) for ids in tokenizer([ex.title for ex in splits.train])["input_ids"]]
    data = TrainingData(splits, encoder, tokenizer, hp.max_length or choose_max_length(untruncated))
    if hp.distill_weight:
        data.teacher, data.teacher_meta = read_teacher(args.teacher, splits, LabelMap.default())
    return data


def read_teacher(path: Path, splits: Splits, labels: LabelMap) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The teacher file's probabilities for the training rows, and what to record of it in training.json.

    A teacher built around another judge (other data, or another judge share) has trained on rows that may be in
    this run's judge, so distilling it would leak the judge into training: the run trains on the labels alone."""
    if not path.is_file():
        raise DataError(f"{path}: no teacher scores to distil; `make teacher` builds them, or train with "
                        "--distill-weight 0")
    try:
        scores, meta = teacher_scores.load(path, splits.train, labels)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: cannot read the teacher's scores ({exc})") from exc
    record = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
              "judge_sha256": meta.get("judge_sha256")}
    if meta.get("judge_sha256") != splits.judge_stats.get("sha256"):
        log.warning("teacher %s was built around another story-disjoint judge: training on the labels alone "
                    "(`make teacher` builds one for this data)", path)
        return None, {**record, "used": False, "reason": "built around another judge"}
    taught = float((~np.isnan(scores).any(axis=1)).mean())
    log.info("teacher %s covers %.1f%% of the training rows", path, 100 * taught)
    return scores, {**record, "used": True, "coverage": round(taught, 4)}


def score(model: HeadlineClassifier, data: TrainingData, labels: LabelMap, hp: Hyperparameters,
          history: list[dict[str, float]]) -> Scored:
    """Logits on valid, test and held-out publishers; the temperature fitted on valid; metrics beside the TF-IDF
    baseline's on the same rows."""
    splits = data.splits
    evaluated = {"valid": splits.valid, "test": splits.test,
                 **{name: rows for name, rows in ((STORY_DISJOINT, splits.judge), (HELD_OUT, splits.held_out)) if rows}}
    logits = {name: predict_logits(model, data.tokenizer, [ex.title for ex in examples], data.max_length,
                                   hp.eval_batch_size) for name, examples in evaluated.items()}
    calibration = fit_valid_calibration(logits["valid"], splits, labels)
    log.info("calibration on %d %s: temperature %.4f, NLL %.4f -> %.4f", calibration.details["n"],
             calibration.details["fitted_on"], calibration.temperature, calibration.details["nll_before"],
             calibration.details["nll_after"])
    metrics: dict[str, Any] = {name: evaluate_logits(logits[name], examples, labels, calibration)
                               for name, examples in evaluated.items()}
    metrics["baseline_tfidf_logreg"] = baseline_metrics(splits.train, evaluated, labels)
    metrics["history"] = history
    metrics["best_epoch"] = max(history, key=lambda h: h["valid_macro_f1"])["epoch"]
    return Scored(evaluated, logits, calibration, metrics)


def training_metadata(args: argparse.Namespace, hp: Hyperparameters, data: TrainingData, model: HeadlineClassifier,
                      scored: Scored, fitted: Fitted, ddp: Distributed) -> dict[str, Any]:
    """training.json: the version, what was trained on what, how, and the headline scores."""
    created = dt.datetime.now(dt.UTC)
    splits, metrics = data.splits, scored.metrics
    return {
        "model_version": f"news-{created:%Y%m%d-%H%M%S}-{_weights_digest(model)[:8]}",
        "created_at": created.isoformat(timespec="seconds"),
        "base_model": hp.base_model,
        "encoder": data.encoder,
        "encoder_sha256": weights_sha256(data.encoder),  # of its model.safetensors; None for a Hub id
        "encoder_type": model.encoder.config.model_type,
        "hidden_size": model.encoder.config.hidden_size,
        "max_length": data.max_length,
        "hyperparameters": hp.as_dict(),
        "teacher": data.teacher_meta,
        "data": {"source": splits.source, "sha256": splits.fingerprint(), "limit": args.limit, "sample": splits.sample,
                 "extra_data": [str(path) for path in args.extra_data], "judge": splits.judge_stats,
                 "counts": {n: category_counts(s) for n, s in (("train", splits.train), *scored.evaluated.items())},
                 "cleaning": {n: dataclasses.asdict(s) for n, s in splits.stats.items()}},
        "metrics": {n: {**{k: metrics[n][k] for k in ("accuracy", "macro_f1", "n")},
                        "ece": round(metrics[n]["calibration"]["after"]["ece"], 4)} for n in scored.evaluated},
        "train_seconds": round(fitted.seconds, 1),
        "device": str(ddp.device),
        "world_size": ddp.world_size,
        "git_commit": _git_commit(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "runtimes": {"torch": [WEIGHTS_FILE]},
    }


def write_model_folder(args: argparse.Namespace, model: HeadlineClassifier, data: TrainingData, labels: LabelMap,
                       metadata: dict[str, Any], scored: Scored, fitted: Fitted) -> None:
    """The model folder (weights, tokenizer, labels, metadata, metrics, calibration, plots, drift baseline), and a
    copy of the reports in the output channel when there is one."""
    save_model_folder(args.model_dir, model, data.tokenizer, labels, metadata, scored.metrics, fitted.step_losses)
    scored.calibration.save(args.model_dir)
    for name, examples in scored.evaluated.items():
        write_plots(scored.metrics[name], scored.logits[name], examples, labels, scored.calibration,
                    args.model_dir / f"confusion_{name}.png", name)
    write_baseline(args.model_dir, [ex.title for ex in data.splits.valid],
                   scored.calibration.probabilities(scored.logits["valid"]), labels, data.splits.source, "torch")
    if args.output_data_dir:
        args.output_data_dir.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "training.json", CALIBRATION_FILE, "training_curve.png", "confusion_test.png",
                     "reliability_test.png"):
            shutil.copy2(args.model_dir / name, args.output_data_dir / name)


def save_model_folder(model_dir: Path, model: HeadlineClassifier, tokenizer: PreTrainedTokenizerBase,
                      labels: LabelMap, metadata: dict[str, Any], metrics: dict[str, Any],
                      step_losses: list[float]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir)
    tokenizer.save_pretrained(model_dir)
    labels.save(model_dir)
    write_metadata(model_dir, metadata)
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_history(metrics["history"], step_losses, model_dir / "training_curve.png")
    copy_inference_code(model_dir)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        result = train(args)
    except (DataError, EncoderUnavailableError) as exc:
        log.error("%s", exc)
        return 2
    if result is None:  # a non-zero torchrun rank: rank 0 reports
        return 0
    metrics = result["metrics"]
    for split in (name for name in ("test", STORY_DISJOINT, HELD_OUT) if name in metrics):
        print(format_report(metrics[split], f"{split} split · model {result['metadata']['model_version']}"))
        base = metrics["baseline_tfidf_logreg"][split]
        print(f"baseline TF-IDF + logistic regression on the same rows: "
              f"accuracy {base['accuracy']:.4f}, macro-F1 {base['macro_f1']:.4f}\n")
    print(f"model written to {args.model_dir} in {result['metadata']['train_seconds']:.0f} s of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
