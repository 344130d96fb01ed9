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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from model.artifact import copy_inference_code, write_metadata
from model.calibration import CALIBRATION_FILE
from model.classifier import WEIGHTS_FILE, HeadlineClassifier, load_tokenizer
from model.encoders import EncoderUnavailable, resolve_encoder, weights_sha256
from model.labels import LabelMap
from model.predict import predict_logits, predict_proba
from training_jobs.calibrate import fit_calibration
from training_jobs.config import (
    REPO_ROOT,
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
from training_jobs.distributed import init_distributed
from training_jobs.drift_baseline import write_baseline
from training_jobs.evaluate import HELD_OUT, evaluate_logits, evaluate_probabilities, format_report, write_plots
from training_jobs.tfidf_baseline import baseline_metrics

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
    add_hyperparameter_arguments(parser)
    return parser.parse_args(argv)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def choose_max_length(lengths: Sequence[int]) -> int:
    """The 99.9th percentile of token lengths, rounded up to a multiple of 8 and capped: never 512."""
    return int(min(MAX_LENGTH_CAP, max(16, math.ceil(np.percentile(lengths, MAX_LENGTH_QUANTILE) / 8) * 8)))


def training_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length examples: random order, little padding."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        sorted_chunk = sorted(order[start:start + chunk], key=lengths.__getitem__)
        batches += [sorted_chunk[i:i + batch_size] for i in range(0, len(sorted_chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def build_optimizer(model: HeadlineClassifier, hp: Hyperparameters) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and LayerNorm; the new head learns faster than the encoder."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = hp.head_learning_rate if name.startswith("head.") else hp.learning_rate
        decay = 0.0 if param.ndim == 1 else hp.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return torch.optim.AdamW([{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()])


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


def _encode(tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], max_length: int) -> list[list[int]]:
    return tokenizer([ex.title for ex in examples], truncation=True, max_length=max_length)["input_ids"]


def train(args: argparse.Namespace) -> dict[str, Any] | None:
    """Train, keep the best epoch by validation macro-F1, calibrate, evaluate, and write the model folder.

    Under torchrun every rank trains on its share of the batches; rank 0 alone validates, writes and
    returns the result, the other ranks return None.
    """
    hp = hyperparameters_from_args(args)
    seed_everything(hp.seed)
    ddp = init_distributed()
    device = ddp.device
    use_amp = device.type == "cuda"
    labels = LabelMap.default()
    splits = _with_test_override(
        load_splits(args.data, hp.seed, args.extra_data, hp.holdout_publishers), args.test_data)
    if args.limit:
        splits.train = splits.train[: args.limit]
    encoder = resolve_encoder(hp.base_model)
    tokenizer = load_tokenizer(encoder)
    untruncated = [len(ids) for ids in tokenizer([ex.title for ex in splits.train])["input_ids"]]
    max_length = hp.max_length or choose_max_length(untruncated)
    log.info("data: %s | train %d, valid %d, test %d | encoder %s | max_length %d | device %s",
             splits.source, len(splits.train), len(splits.valid), len(splits.test), encoder, max_length, device)

    model = HeadlineClassifier.from_encoder(encoder, len(labels), hp.dropout).to(device)
    if hp.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    optimizer = build_optimizer(model, hp)
    replica = ddp.wrap(model)
    train_ids = _encode(tokenizer, splits.train, max_length)
    targets = torch.tensor([labels.index_of_category(ex.category) for ex in splits.train])
    steps_per_epoch = math.ceil(len(train_ids) / hp.train_batch_size) // ddp.world_size
    total_steps = steps_per_epoch * hp.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = nn.CrossEntropyLoss()
    rng = random.Random(hp.seed)
    history: list[dict[str, float]] = []
    step_losses: list[float] = []
    best_f1, best_state = -1.0, None
    started = time.monotonic()

    for epoch in tqdm(range(1, hp.epochs + 1), desc="epochs", unit="epoch"):
        model.train()
        epoch_loss = 0.0
        batches = ddp.shard(training_batches([len(ids) for ids in train_ids], hp.train_batch_size, rng))
        for batch in tqdm(batches, desc=f"epoch {epoch}", unit="step", leave=False):
            padded = tokenizer.pad({"input_ids": [train_ids[i] for i in batch]}, return_tensors="pt")
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = replica(padded["input_ids"].to(device), padded["attention_mask"].to(device))
                loss = loss_fn(logits.float(), targets[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step_losses.append(loss.item())
            epoch_loss += loss.item() * len(batch)
        if not ddp.is_main:
            continue
        valid = evaluate_probabilities(
            predict_proba(model, tokenizer, [ex.title for ex in splits.valid], max_length, hp.eval_batch_size, device),
            splits.valid, labels)
        history.append({"epoch": epoch, "train_loss": epoch_loss / sum(map(len, batches)),
                        "valid_accuracy": valid["accuracy"], "valid_macro_f1": valid["macro_f1"]})
        log.info("epoch %d/%d: train loss %.4f, valid accuracy %.4f, valid macro-F1 %.4f",
                 epoch, hp.epochs, history[-1]["train_loss"], valid["accuracy"], valid["macro_f1"])
        if valid["macro_f1"] > best_f1:
            best_f1 = valid["macro_f1"]
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    train_seconds = time.monotonic() - started
    ddp.close()
    if not ddp.is_main:
        return None

    model.load_state_dict(best_state)
    model.to("cpu").eval()
    evaluated = {"valid": splits.valid, "test": splits.test, **({HELD_OUT: splits.held_out} if splits.held_out else {})}
    logits = {name: predict_logits(model, tokenizer, [ex.title for ex in examples], max_length, hp.eval_batch_size)
              for name, examples in evaluated.items()}
    calibration = fit_calibration(logits["valid"], [labels.index_of_category(ex.category) for ex in splits.valid])
    log.info("calibration: temperature %.4f, validation NLL %.4f -> %.4f", calibration.temperature,
             calibration.details["nll_before"], calibration.details["nll_after"])
    metrics: dict[str, Any] = {name: evaluate_logits(logits[name], examples, labels, calibration)
                               for name, examples in evaluated.items()}
    metrics["baseline_tfidf_logreg"] = baseline_metrics(splits.train, evaluated, labels)
    metrics["history"] = history
    metrics["best_epoch"] = max(history, key=lambda h: h["valid_macro_f1"])["epoch"]
    created = dt.datetime.now(dt.UTC)
    metadata = {
        "model_version": f"news-{created:%Y%m%d-%H%M%S}-{_weights_digest(model)[:8]}",
        "created_at": created.isoformat(timespec="seconds"),
        "base_model": hp.base_model,
        "encoder": encoder,
        "encoder_sha256": weights_sha256(encoder),  # of its model.safetensors; None for a Hub id
        "encoder_type": model.encoder.config.model_type,
        "hidden_size": model.encoder.config.hidden_size,
        "max_length": max_length,
        "hyperparameters": hp.as_dict(),
        "data": {"source": splits.source, "sha256": splits.fingerprint(), "limit": args.limit,
                 "counts": {n: category_counts(s) for n, s in (("train", splits.train), *evaluated.items())},
                 "cleaning": {n: dataclasses.asdict(s) for n, s in splits.stats.items()}},
        "metrics": {n: {**{k: metrics[n][k] for k in ("accuracy", "macro_f1", "n")},
                        "ece": round(metrics[n]["calibration"]["after"]["ece"], 4)} for n in evaluated},
        "train_seconds": round(train_seconds, 1),
        "device": str(device),
        "world_size": ddp.world_size,
        "git_commit": _git_commit(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "runtimes": {"torch": [WEIGHTS_FILE]},
    }
    save_model_folder(args.model_dir, model, tokenizer, labels, metadata, metrics, step_losses)
    calibration.save(args.model_dir)
    for name, examples in evaluated.items():
        write_plots(metrics[name], logits[name], examples, labels, calibration,
                    args.model_dir / f"confusion_{name}.png", name)
    write_baseline(args.model_dir, [ex.title for ex in splits.valid], calibration.probabilities(logits["valid"]),
                   labels, splits.source, "torch")
    if args.output_data_dir:
        args.output_data_dir.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "training.json", CALIBRATION_FILE, "training_curve.png", "confusion_test.png",
                     "reliability_test.png"):
            shutil.copy2(args.model_dir / name, args.output_data_dir / name)
    return {"metadata": metadata, "metrics": metrics}


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
    except (DataError, EncoderUnavailable) as exc:
        log.error("%s", exc)
        return 2
    if result is None:  # a non-zero torchrun rank: rank 0 reports
        return 0
    metrics = result["metrics"]
    for split in ("test", HELD_OUT) if HELD_OUT in metrics else ("test",):
        print(format_report(metrics[split], f"{split} split · model {result['metadata']['model_version']}"))
        base = metrics["baseline_tfidf_logreg"][split]
        print(f"baseline TF-IDF + logistic regression on the same rows: "
              f"accuracy {base['accuracy']:.4f}, macro-F1 {base['macro_f1']:.4f}\n")
    print(f"model written to {args.model_dir} in {result['metadata']['train_seconds']:.0f} s of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
