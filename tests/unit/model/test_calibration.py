"""The model folder's calibration: every runtime applies its temperature, none means the raw softmax, a broken
file is refused."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.calibration import CALIBRATION_FILE, Calibration, CalibrationError, softmax
from model.runtime import RUNTIMES, load_predictor

HEADLINES = ["Fed raises interest rates as inflation stays high", "New Ebola vaccine enters trials",
             "Apple unveils a bigger iPhone", "Kim Kardashian and Kanye West marry in Florence"]


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
