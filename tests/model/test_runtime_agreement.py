"""The three serving runtimes agree on real headlines: ONNX fp32 equals PyTorch, int8 stays close, and all three
serve the calibrated scores."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from model.calibration import Calibration, softmax
from model.labels import LabelMap
from model.onnx_export import export_model_folder
from model.runtime import RUNTIMES, load_predictor
from training_jobs.calibrate import UNSEEN_STORIES
from training_jobs.config import split_file
from training_jobs.data import clean, read_examples
from training_jobs.reliability import expected_calibration_error, negative_log_likelihood

pytestmark = pytest.mark.slow
HEADLINES = 600
MAX_ECE = 0.04  # 600 headlines: the binning noise alone is about 0.01


@pytest.fixture(scope="module")
def exported_model(small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(shutil.copytree(small_model_dir, tmp_path_factory.mktemp("agreement") / "model"))
    export_model_folder(folder)
    return folder


@pytest.fixture(scope="module")
def test_split(data_dir: Path) -> tuple[list[str], np.ndarray]:
    examples, _ = clean(read_examples(split_file(data_dir, "test")), dedupe=False)
    labels = LabelMap.default()
    examples = examples[:HEADLINES]
    return [ex.title for ex in examples], np.array([labels.index_of_category(ex.category) for ex in examples])


@pytest.fixture(scope="module")
def probabilities(exported_model: Path, test_split: tuple[list[str], np.ndarray]) -> dict[str, np.ndarray]:
    titles, _ = test_split
    return {runtime: load_predictor(exported_model, runtime).predict_proba(titles)
            for runtime in ("torch", "onnx", "onnx-int8")}


def test_onnx_fp32_reproduces_pytorch(probabilities: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(probabilities["onnx"], probabilities["torch"], atol=1e-4)


def test_int8_keeps_the_labels_and_the_accuracy(probabilities: dict[str, np.ndarray],
                                                test_split: tuple[list[str], np.ndarray]) -> None:
    _, truth = test_split
    fp32, int8 = probabilities["torch"].argmax(axis=1), probabilities["onnx-int8"].argmax(axis=1)
    assert (fp32 == int8).mean() >= 0.97
    assert np.abs(probabilities["onnx-int8"] - probabilities["torch"]).mean() <= 0.02
    assert (int8 == truth).mean() >= (fp32 == truth).mean() - 0.015


def test_long_and_odd_headlines_agree(exported_model: Path) -> None:
    """Truncation at max_length and unusual characters go through both tokenizers the same way."""
    odd = ["word " * 400, "ÉTATS-UNIS: la Fed 🚀 relève ses taux", "   spaced\tout   headline  ", "$$$ 100% !!!"]
    torch_p = load_predictor(exported_model, "torch").predict_proba(odd)
    onnx_p = load_predictor(exported_model, "onnx").predict_proba(odd)
    np.testing.assert_allclose(onnx_p, torch_p, atol=1e-4)


def test_every_runtime_serves_its_logits_through_the_folders_temperature(
        exported_model: Path, test_split: tuple[list[str], np.ndarray]) -> None:
    """The temperature training fitted is applied by torch, ONNX fp32 and int8 alike, and moves no label."""
    titles = test_split[0][:100]
    calibration = Calibration.load(exported_model)
    assert calibration.fitted and calibration.details["fitted_on"] == UNSEEN_STORIES
    for runtime in RUNTIMES:
        predictor = load_predictor(exported_model, runtime)
        logits, served = predictor.predict_logits(titles), predictor.predict_proba(titles)
        np.testing.assert_allclose(served, calibration.probabilities(logits), atol=1e-6, err_msg=runtime)
        assert (served.argmax(axis=1) == logits.argmax(axis=1)).all(), runtime


def test_served_scores_are_calibrated_in_every_runtime(probabilities: dict[str, np.ndarray],
                                                       test_split: tuple[list[str], np.ndarray]) -> None:
    """On test headlines the temperature never saw: a runtime serving uncalibrated scores misses this bound."""
    _, truth = test_split
    for runtime, served in probabilities.items():
        assert expected_calibration_error(served, truth) <= MAX_ECE, runtime


def test_the_temperature_fitted_on_valid_helps_on_test(exported_model: Path,
                                                       test_split: tuple[list[str], np.ndarray]) -> None:
    titles, truth = test_split
    predictor = load_predictor(exported_model, "torch")
    logits = predictor.predict_logits(titles)
    raw, calibrated = softmax(logits), predictor.calibration.probabilities(logits)
    assert negative_log_likelihood(calibrated, truth) <= negative_log_likelihood(raw, truth)
    assert expected_calibration_error(calibrated, truth) <= expected_calibration_error(raw, truth)
