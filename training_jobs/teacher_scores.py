"""The teacher's scores file (`python -m training_jobs.teacher` writes it, training reads it): probabilities per
training headline, keyed by a hash of the normalised title so that it holds no headline, with its metadata."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.labels import LabelMap
from training_jobs.data import Example, normalise_title

FORMAT = "news-teacher/1"


def title_key(title: str) -> str:
    """The file's key of a headline: 16 hex digits of the SHA-256 of its normalised form."""
    return hashlib.sha256(normalise_title(title).encode()).hexdigest()[:16]


def save(path: Path, keys: Sequence[str], probabilities: np.ndarray, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, keys=np.array(keys), probabilities=probabilities.astype(np.float32),
                        meta=np.array(json.dumps({"format": FORMAT, **meta})))


def load(path: Path, examples: Sequence[Example], labels: LabelMap) -> tuple[np.ndarray, dict[str, Any]]:
    """(probabilities per example, NaN where the teacher has none; the file's metadata) in label-map order."""
    with np.load(path, allow_pickle=False) as stored:
        meta = json.loads(str(stored["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a teacher file of format {FORMAT}")
        order = [meta["labels"].index(category) for category in labels.categories]
        table = dict(zip(stored["keys"].tolist(), stored["probabilities"][:, order], strict=True))
    missing = np.full(len(labels), np.nan, dtype=np.float32)
    return np.stack([table.get(title_key(ex.title), missing) for ex in examples]), meta
