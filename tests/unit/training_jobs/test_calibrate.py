"""Temperature scaling: the fit finds the temperature that made the data, the folder keeps it, every runtime applies
it and no label changes; the calibration metrics match their definitions."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.calibration import CALIBRATION_FILE, Calibration, CalibrationError, softmax
from model.runtime import RUNTIMES, load_predictor
from training_jobs.calibrate import fit_calibration, main, temperature_nll
from training_jobs.reliability import (
    accuracy_at_coverage,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
    selective,
)

HEADLINES = ["Fed raises interest rates as inflation stays high", "New Ebola vaccine enters trials",
             "Apple unveils a bigger iPhone", "Kim Kardashian and Kanye West marry in Florence"]


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


def test_the_metrics_match_their_definitions_on_a_worked_example() -> None:
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    labels = np.array([0, 1, 1, 1])  # right, wrong, right, right
    # bins of width 1/15: 0.9 -> bin 13, 0.6 -> bin 9, 0.7 -> bin 10, 0.8 -> bin 12: one headline each
    assert expected_calibration_error(probabilities, labels) == pytest.approx(
        (abs(1 - 0.9) + abs(0 - 0.6) + abs(1 - 0.7) + abs(1 - 0.8)) / 4)
    assert brier_score(probabilities, labels) == pytest.approx((0.02 + 0.72 + 0.18 + 0.08) / 4)
    assert negative_log_likelihood(probabilities, labels) == pytest.approx(
        -np.mean(np.log([0.9, 0.4, 0.7, 0.8])))
    assert sum(row["count"] for row in reliability_bins(probabilities, labels)) == 4
    assert selective(probabilities, labels, 0.65) == {"threshold": 0.65, "coverage": 0.75, "accuracy": 1.0,
                                                      "flagged_accuracy": 0.0}
    assert accuracy_at_coverage(probabilities, labels, (1.0, 0.5)) == {"1": 0.75, "0.5": 1.0}


def test_a_folder_without_calibration_serves_the_raw_softmax_and_says_so(tiny_onnx_model_dir: Path,
                                                                          tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_onnx_model_dir, tmp_path / "old"))
    (folder / CALIBRATION_FILE).unlink()
    calibration = Calibration.load(folder)
    assert (calibration.temperature, calibration.fitted) == (1.0, False)
    assert "no calibration.json" in calibration.describe()["note"]
    predictor = load_predictor(folder, "onnx")
    logits = predictor.predict_logits(HEADLINES)
    np.testing.assert_allclose(predictor.predict_proba(HEADLINES), softmax(logits), atol=1e-6)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_runtime_divides_its_logits_by_the_folders_temperature(
        tiny_onnx_model_dir: Path, tmp_path: Path, runtime: str, caplog: pytest.LogCaptureFixture) -> None:
    """A temperature far from 1 written into the folder must change what each runtime serves, and nothing else."""
    folder = Path(shutil.copytree(tiny_onnx_model_dir, tmp_path / "model"))
    Calibration(0.05, fitted=True).save(folder)
    with caplog.at_level(logging.INFO, logger="model.runtime"):
        predictor = load_predictor(folder, runtime)
    assert "'temperature': 0.05" in caplog.text
    logits = predictor.predict_logits(HEADLINES)
    served = predictor.predict_proba(HEADLINES)
    np.testing.assert_allclose(served, softmax(logits / 0.05), atol=1e-5)
    assert not np.allclose(served, softmax(logits), atol=1e-3)
    assert (served.argmax(axis=1) == logits.argmax(axis=1)).all()


@pytest.mark.parametrize("content", ['{"method": "temperature", "temperature": 0}',
                                     '{"method": "temperature", "temperature": "hot"}',
                                     '{"method": "isotonic", "temperature": 1.2}', "{not json"])
def test_a_broken_calibration_file_is_refused_with_its_path(tmp_path: Path, content: str) -> None:
    (tmp_path / CALIBRATION_FILE).write_text(content)
    with pytest.raises(CalibrationError, match=CALIBRATION_FILE):
        Calibration.load(tmp_path)


def test_training_writes_the_calibration_and_its_report(tiny_model_dir: Path) -> None:
    stored = json.loads((tiny_model_dir / CALIBRATION_FILE).read_text())
    assert stored["method"] == "temperature" and stored["fitted_on"] == "valid" and stored["n"] == 1336
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
