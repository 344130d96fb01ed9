"""Behavioural tests of a model trained in CI on a real subset: minimum functionality, invariance, direction.

The subject is the embedded encoder fine-tuned on 3,000 real NLP-100 rows (the `small_model_dir`
fixture), so a broken data, label or training pipeline cannot pass the accuracy floors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.predict import TorchPredictor
from training_jobs.config import split_file
from training_jobs.data import read_examples
from training_jobs.evaluate import evaluate_probabilities

# Floors well below what the subset model reaches and far above chance (0.42 majority class).
MIN_ACCURACY = 0.85
MIN_MACRO_F1 = 0.78

CLEAR_CASES = {
    "Business": ["Fed signals interest rates will stay low as inflation cools",
                 "Oil prices fall as OPEC output rises", "Wall Street stocks close higher on strong earnings",
                 "Bank of England holds interest rates steady", "Euro zone economy grows faster than expected"],
    "Entertainment": ["Kim Kardashian and Kanye West share wedding photos",
                      "Box office: new Transformers movie tops the weekend", "Beyonce announces world tour dates",
                      "Game of Thrones season finale breaks HBO ratings record", "Lady Gaga releases new album"],
    "Science": ["Apple unveils new iPhone with bigger screen", "Microsoft releases Windows security update",
                "NASA spacecraft sends back new images of Mars", "Facebook buys messaging app for $19 billion",
                "Google tests self-driving cars on city streets"],
    "Health": ["Ebola outbreak spreads in West Africa, WHO says",
               "New study links sugary drinks to obesity in children",
               "FDA approves new drug for Alzheimer's disease", "Measles cases rise as vaccination rates drop",
               "Cancer patients benefit from new immunotherapy trial"],
}


@pytest.fixture(scope="module")
def predictor(small_model_dir: Path) -> TorchPredictor:
    return TorchPredictor(small_model_dir)


def label_of(predictor: TorchPredictor, headlines: list[str]) -> list[str]:
    return [predictor.labels.names[int(i)] for i in predictor.predict_proba(headlines).argmax(axis=1)]


def score_of(predictor: TorchPredictor, headline: str, label: str) -> float:
    return float(predictor.predict_proba([headline])[0][predictor.labels.names.index(label)])


def test_accuracy_floor_on_the_full_nlp100_test_split(predictor: TorchPredictor, data_dir: Path) -> None:
    examples = read_examples(split_file(data_dir, "test"))
    metrics = evaluate_probabilities(predictor.predict_proba([ex.title for ex in examples]), examples,
                                     predictor.labels)
    assert metrics["accuracy"] >= MIN_ACCURACY, metrics
    assert metrics["macro_f1"] >= MIN_MACRO_F1, metrics


@pytest.mark.parametrize("label", list(CLEAR_CASES))
def test_minimum_functionality_on_unambiguous_headlines(predictor: TorchPredictor, label: str) -> None:
    predicted = label_of(predictor, CLEAR_CASES[label])
    assert sum(p == label for p in predicted) >= 4, list(zip(CLEAR_CASES[label], predicted, strict=True))


@pytest.mark.parametrize(("original", "perturbed"), [
    ("Oil prices fall as OPEC output rises", "OIL PRICES FALL AS OPEC OUTPUT RISES"),
    ("Oil prices fall as OPEC output rises", "  Oil   prices fall as OPEC output rises  "),
    ("Apple unveils new iPhone with bigger screen", "Apple unveils new iPhone with bigger screen."),
    ("Beyonce announces world tour dates", "Rihanna announces world tour dates"),
    ("Fed signals interest rates will stay low", "ECB signals interest rates will stay low"),
    ("Ebola outbreak spreads in West Africa", "Ebola outbreak spreads in Guinea"),
])
def test_invariance_to_case_spacing_punctuation_and_names(
        predictor: TorchPredictor, original: str, perturbed: str) -> None:
    assert label_of(predictor, [original]) == label_of(predictor, [perturbed])


def test_case_and_spacing_give_identical_scores(predictor: TorchPredictor) -> None:
    """The vocabulary is uncased and whitespace is normalised by the tokenizer: scores must match exactly."""
    scores = predictor.predict_proba(["Stocks rally on Wall Street", "STOCKS   rally on wall street"])
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5)


@pytest.mark.parametrize(("base", "addition", "label"), [
    ("Oil prices fall as OPEC output rises", " as hospitals report a measles outbreak", "Health"),
    ("Beyonce announces world tour dates", " as record label shares plunge on Wall Street", "Business"),
    ("Fed holds interest rates steady", " as Hollywood actress stars in new movie", "Entertainment"),
    ("Box office: new movie tops the weekend", " as Google releases Android smartphone app", "Science"),
])
def test_directional_evidence_raises_its_class_score(
        predictor: TorchPredictor, base: str, addition: str, label: str) -> None:
    """Evidence for another class, added to a clear headline, must at least double that class's probability.

    A ratio, not a difference: a confident model keeps the other class's probability small in absolute terms.
    """
    assert score_of(predictor, base + addition, label) >= 2 * score_of(predictor, base, label)
