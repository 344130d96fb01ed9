"""The distillation teacher: out-of-fold scores of an ensemble for every training row, written as a versioned file.

    python -m training_jobs.teacher --output training_jobs/teacher_scores.npz [--folds 4 --seeds 1 2] [train flags]

(`make teacher` runs it with `make train`'s data and writes the file training distils by default.)

A model's scores on rows it trained on are nearly one-hot; scores from models that never saw a row's story say how
much the headline looks like each class, which the story-cluster label alone does not. Whole stories (else titles)
are dealt into folds; each fold is scored by fine-tuned encoders trained on the other folds (the student's recipe,
calibrated on valid) and by TF-IDF logistic regression, and the file averages them. It is keyed by a hash of the
normalised title, so it holds no headline (docs/training.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from model.classifier import HeadlineClassifier
from model.labels import LabelMap
from model.predict import predict_logits
from training_jobs.calibrate import fit_valid_calibration
from training_jobs.config import Hyperparameters, hyperparameters_from_args
from training_jobs.data import Example, normalise_title
from training_jobs.distributed import init_distributed
from training_jobs.fit import fit
from training_jobs.holdout import unit
from training_jobs.teacher_scores import save, title_key
from training_jobs.tfidf_baseline import fit_baseline
from training_jobs.train import TrainingData, load_training_data, parse_args, seed_everything

log = logging.getLogger("training_jobs.teacher")
FOLD_SALT = "teacher-fold"
TFIDF_WEIGHT = 1 / 3  # the TF-IDF member's share of the mix; the fine-tuned encoders share the rest


def fold_of(example: Example, folds: int) -> int:
    """Rows of one story share a fold, so no teacher member scores a story it trained on."""
    return int(unit(FOLD_SALT, example.story or normalise_title(example.title)) * folds)


def encoder_scores(data: TrainingData, fold: int, folds: int, labels: LabelMap, hp: Hyperparameters
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(calibrated probabilities of fold `fold`'s rows, of the judge's) from an encoder trained on the others."""
    splits = data.splits
    inside = [ex for ex in splits.train if fold_of(ex, folds) == fold]
    seed_everything(hp.seed * 100 + fold)
    model = HeadlineClassifier.from_encoder(data.encoder, len(labels), hp.dropout)
    if hp.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    others = replace(splits, train=[ex for ex in splits.train if fold_of(ex, folds) != fold])
    fitted = fit(model, data.tokenizer, others, data.max_length, labels, hp, init_distributed())
    model.load_state_dict(fitted.best_state)

    def scored(rows: Sequence[Example]) -> np.ndarray:
        return predict_logits(model, data.tokenizer, [ex.title for ex in rows], data.max_length, hp.eval_batch_size)

    calibration = fit_valid_calibration(scored(splits.valid), others, labels)
    return calibration.probabilities(scored(inside)), calibration.probabilities(scored(splits.judge))


def tfidf_scores(train: Sequence[Example], folds: int, labels: LabelMap) -> np.ndarray:
    """Out-of-fold TF-IDF probabilities for every training row, in training order."""
    out = np.zeros((len(train), len(labels)))
    for fold in range(folds):
        inside = [i for i, ex in enumerate(train) if fold_of(ex, folds) == fold]
        pipeline = fit_baseline([ex for ex in train if fold_of(ex, folds) != fold], labels)
        out[inside] = pipeline.predict_proba([train[i].title for i in inside])
    return out


def build(data: TrainingData, hp: Hyperparameters, folds: int, seeds: Sequence[int]) -> dict[str, Any]:
    """The teacher's probabilities for every training row and how its members score on the judge."""
    labels = LabelMap.default()
    train = data.splits.train
    encoders = np.zeros((len(train), len(labels)))
    judge = np.zeros((len(data.splits.judge), len(labels)))
    for seed in seeds:
        for fold in range(folds):
            log.info("teacher member: seed %d, fold %d of %d", seed, fold + 1, folds)
            inside = [i for i, ex in enumerate(train) if fold_of(ex, folds) == fold]
            fold_scores, judge_scores = encoder_scores(data, fold, folds, labels, replace(hp, seed=seed))
            encoders[inside] += fold_scores / len(seeds)
            judge += judge_scores / (len(seeds) * folds)
    probabilities = (1 - TFIDF_WEIGHT) * encoders + TFIDF_WEIGHT * tfidf_scores(train, folds, labels)
    truth = np.array([labels.index_of_category(ex.category) for ex in train])
    judge_truth = np.array([labels.index_of_category(ex.category) for ex in data.splits.judge])
    return {"probabilities": probabilities.astype(np.float32), "keys": [title_key(ex.title) for ex in train],
            "report": {"out_of_fold_accuracy": float((probabilities.argmax(1) == truth).mean()),
                       "out_of_fold_encoder_accuracy": float((encoders.argmax(1) == truth).mean()),
                       "judge_encoder_ensemble_accuracy": float((judge.argmax(1) == judge_truth).mean())
                       if len(judge_truth) else None}}


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    own, rest = parser.parse_known_args(argv)
    args = parse_args(rest)
    hp = replace(hyperparameters_from_args(args), distill_weight=0.0)  # the members learn from the labels alone
    data = load_training_data(args, hp)
    built = build(data, hp, own.folds, own.seeds)
    meta = {"labels": LabelMap.default().categories, "folds": own.folds, "seeds": own.seeds,
            "tfidf_weight": TFIDF_WEIGHT, "recipe": hp.as_dict(), "data_sha256": data.splits.fingerprint(),
            "judge_sha256": data.splits.judge_stats.get("sha256"),
            "rows": len(built["keys"]), "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **built["report"]}
    save(own.output, built["keys"], built["probabilities"], meta)
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
