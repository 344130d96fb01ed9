"""Temperature scaling: the fit finds the temperature that made the data, training and the command store it in the
folder, and no label changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.calibration import CALIBRATION_FILE, Calibration, softmax
from training_jobs.calibrate import (
    MIN_UNSEEN_STORY_ROWS,
    UNSEEN_STORIES,
    calibration_rows,
    fit_calibration,
    main,
    temperature_nll,
)
from training_jobs.data import Example, Splits, splits_of_model
from training_jobs.reliability import brier_score, expected_calibration_error


def sampled(temperature: float, n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn so that softmax(logits / temperature) is exactly the true class distribution."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, size=(n, 4))
    probabilities = softmax(logits / temperature)
    labels = np.array([rng.choice(4, p=row) for row in probabilities])
    return logits, labels


@pytest.mark.parametrize("temperature", [0.6, 1.0, 2.5])
def test_the_fit_recovers_the_temperature_that_made_the_labels(temperature: float) -> None:
    logits, labels = sampled(temperature)
    fitted = fit_calibration(logits, labels)
    assert fitted.temperature == pytest.approx(temperature, rel=0.05)
    assert fitted.details["nll_after"] <= fitted.details["nll_before"]
    assert fitted.details["nll_after"] == pytest.approx(temperature_nll(logits, labels, fitted.temperature), abs=1e-6)


def test_calibrated_scores_keep_every_label_and_fix_the_overconfidence() -> None:
    logits, labels = sampled(2.5)
    raw, calibrated = softmax(logits), fit_calibration(logits, labels).probabilities(logits)
    assert (calibrated.argmax(axis=1) == logits.argmax(axis=1)).all()
    assert expected_calibration_error(raw, labels) > 0.1
    assert expected_calibration_error(calibrated, labels) < 0.02
    assert brier_score(calibrated, labels) < brier_score(raw, labels)


def test_training_writes_the_calibration_and_its_report(tiny_model_dir: Path, data_dir: Path) -> None:
    stored = json.loads((tiny_model_dir / CALIBRATION_FILE).read_text())
    splits = splits_of_model(tiny_model_dir, data_dir)
    trained = {ex.story for ex in splits.train}
    unseen = [ex for ex in splits.valid if ex.story and ex.story not in trained]
    assert stored["method"] == "temperature" and stored["fitted_on"] == UNSEEN_STORIES
    assert stored["n"] == len(unseen) >= MIN_UNSEEN_STORY_ROWS
    metrics = json.loads((tiny_model_dir / "metrics.json").read_text())
    for split in ("valid", "test"):
        before, after = metrics[split]["calibration"]["before"], metrics[split]["calibration"]["after"]
        assert before["accuracy"] == after["accuracy"] == pytest.approx(metrics[split]["accuracy"])
        assert {"ece", "brier", "nll", "mean_top_score"} <= set(after)
    assert metrics["valid"]["calibration"]["after"]["nll"] <= metrics["valid"]["calibration"]["before"]["nll"] + 1e-6
    for name in ("reliability_test.png", "coverage_test.png", "confusion_test.png"):
        assert (tiny_model_dir / name).stat().st_size > 1000


def test_the_command_calibrates_a_folder_trained_before_calibration(
        tiny_model_dir: Path, tiny_model_copy: Path, data_dir: Path) -> None:
    (tiny_model_copy / CALIBRATION_FILE).unlink()
    assert main(["--model-dir", str(tiny_model_copy), "--data", str(data_dir)]) == 0
    refitted, at_training = Calibration.load(tiny_model_copy), Calibration.load(tiny_model_dir)
    assert refitted.fitted and refitted.temperature == pytest.approx(at_training.temperature, rel=1e-3)


def test_the_temperature_is_fitted_on_validation_rows_of_stories_training_never_saw() -> None:
    seen = [Example(f"trained {i}", "b", "P", f"s{i}") for i in range(MIN_UNSEEN_STORY_ROWS)]
    valid = [Example(f"same story {i}", "b", "P", f"s{i}") for i in range(MIN_UNSEEN_STORY_ROWS)]
    valid += [Example(f"new story {i}", "t", "P", f"n{i}") for i in range(MIN_UNSEEN_STORY_ROWS)]
    valid += [Example("no story id", "e")]
    rows, name = calibration_rows(Splits(seen, valid, [], "synthetic"))
    assert name == UNSEEN_STORIES and [valid[i].title for i in rows] == [f"new story {i}" for i in range(100)]
    rows, name = calibration_rows(Splits(seen, valid[:-50], [], "synthetic"))  # too few unseen: all of valid
    assert name == "valid" and rows == list(range(len(valid) - 50))
