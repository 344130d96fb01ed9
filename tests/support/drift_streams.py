"""Streams of real NLP-100 headlines with plausible synthetic model answers, for the drift tests.

A stand-in model answers like the trained one: the true label 94% of the time, with a top score that is
usually above 0.95 and sometimes low. The answer is seeded by the title, so a title always gets the same one,
as from a real model. The baseline is the validation split; the "normal" stream a random sample of the test
split; the "shifted" stream the test split's Health headlines only.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from chalicelib.drift import Observation

from model.encoders import embedded_encoder_dir
from model.labels import LabelMap
from training_jobs.data import Example, load_splits
from training_jobs.drift_baseline import build_baseline, token_lengths

LABELS = LabelMap.default()
ACCURACY = 0.94
NORMAL_SIZE = 500
HEALTH = "m"


def probabilities(example: Example) -> np.ndarray:
    rng = random.Random(zlib.crc32(example.title.encode()))
    true = LABELS.index_of_category(example.category)
    predicted = true if rng.random() < ACCURACY else rng.choice([i for i in range(len(LABELS)) if i != true])
    top = 1 - 0.7 * rng.random() ** 8  # mostly near 1; about 5% below 0.7
    row = np.full(len(LABELS), (1 - top) / (len(LABELS) - 1))
    row[predicted] = top
    return row


def observations(examples: Sequence[Example]) -> list[Observation]:
    answers = [probabilities(ex) for ex in examples]
    return [Observation(ex.title, LABELS.name(int(p.argmax())), float(p.max())) for ex, p in zip(examples, answers,
                                                                                                  strict=True)]


def baseline(examples: Sequence[Example], model_version: str) -> dict[str, Any]:
    """The baseline document training would write for the stand-in model (real tokenizer for token length)."""
    titles = [ex.title for ex in examples]
    return build_baseline(titles, np.stack([probabilities(ex) for ex in examples]), LABELS,
                          token_lengths(embedded_encoder_dir(), titles),
                          {"model_version": model_version, "split": "valid", "data": "NLP-100", "runtime": "synthetic"})


def streams(data_dir: Path) -> tuple[list[Example], list[Example], list[Example]]:
    """(baseline split, normal stream, shifted stream) of real headlines."""
    splits = load_splits(data_dir, seed=13)
    normal = random.Random(7).sample(splits.test, NORMAL_SIZE)
    return splits.valid, normal, [ex for ex in splits.test if ex.category == HEALTH]
