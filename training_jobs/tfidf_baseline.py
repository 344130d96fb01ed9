"""The reference every fine-tune must beat clearly: TF-IDF word uni+bigrams with logistic regression."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from model.labels import LabelMap
from training_jobs.data import Example
from training_jobs.evaluate import compute_metrics


def fit_baseline(train: Sequence[Example], labels: LabelMap) -> Pipeline:
    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                             LogisticRegression(C=10.0, max_iter=3000))
    pipeline.fit([ex.title for ex in train], [labels.index_of_category(ex.category) for ex in train])
    return pipeline


def baseline_metrics(train: Sequence[Example], evaluate_on: dict[str, Sequence[Example]],
                     labels: LabelMap) -> dict[str, dict[str, Any]]:
    """Fit on `train`, report on each named split with the same metrics as the transformer."""
    pipeline = fit_baseline(train, labels)
    return {name: compute_metrics([labels.index_of_category(ex.category) for ex in examples],
                                  pipeline.predict([ex.title for ex in examples]).tolist(), labels.names)
            for name, examples in evaluate_on.items()}
