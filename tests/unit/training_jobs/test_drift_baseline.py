"""The drift baseline in the model folder (training_jobs/drift_baseline.py): written by training, added to an
existing folder by its command, readable by the Lambda's code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalicelib.drift import Baseline

from model.artifact import DRIFT_BASELINE_FILE, read_metadata
from model.calibration import UNCERTAIN_BELOW
from model.labels import LabelMap
from training_jobs.data import splits_of_model
from training_jobs.drift_baseline import main, token_lengths

FEATURES = {"label", "top_score", "title_chars", "title_words", "token_length"}


def read_baseline(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / DRIFT_BASELINE_FILE).read_text())


def test_training_writes_the_baseline_of_its_validation_split(tiny_model_dir: Path, data_dir: Path) -> None:
    baseline = read_baseline(tiny_model_dir)
    metadata = read_metadata(tiny_model_dir)
    valid = splits_of_model(tiny_model_dir, data_dir).valid
    assert baseline["model_version"] == metadata["model_version"]
    assert (baseline["split"], baseline["runtime"], baseline["samples"]) == ("valid", "torch", len(valid))
    assert set(baseline["features"]) == FEATURES
    assert baseline["features"]["label"]["categories"] == list(LabelMap.load(tiny_model_dir).names)
    for name, histogram in baseline["features"].items():
        assert sum(histogram["counts"]) == len(valid), name
    assert 0 <= baseline["low_confidence"]["share"] <= 1
    parsed = Baseline.from_dict(baseline)  # exactly what the Lambda reads
    assert parsed.model_version == metadata["model_version"] and parsed.low_confidence_threshold == UNCERTAIN_BELOW


def test_command_adds_the_same_baseline_to_an_existing_folder(tiny_model_copy: Path, data_dir: Path) -> None:
    trained = read_baseline(tiny_model_copy)
    (tiny_model_copy / DRIFT_BASELINE_FILE).unlink()
    assert main(["--model-dir", str(tiny_model_copy), "--data", str(data_dir), "--runtime", "torch"]) == 0
    added = read_baseline(tiny_model_copy)
    for name in ("label", "title_chars", "title_words", "token_length"):
        assert added["features"][name] == trained["features"][name], name
    # Scores may differ in the last float bits (other batch padding), never in substance.
    assert added["features"]["top_score"]["edges"] == pytest.approx(trained["features"]["top_score"]["edges"],
                                                                    rel=1e-4)
    assert added["model_version"] == trained["model_version"]


def test_token_length_ignores_the_truncation_saved_with_the_tokenizer(tiny_model_dir: Path) -> None:
    max_length = read_metadata(tiny_model_dir)["max_length"]
    long_title = " ".join(["markets"] * (2 * max_length))
    assert token_lengths(tiny_model_dir, [long_title, "Stocks rally"]) == [2 * max_length + 2, 4]


def test_missing_data_or_model_are_clear_errors(tiny_model_copy: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model-dir", str(tiny_model_copy), "--data", str(tmp_path / "nowhere")]) == 2
    assert "neither a data file nor a folder" in capsys.readouterr().err
    assert main(["--model-dir", str(tmp_path)]) == 2
    assert "training.json: missing" in capsys.readouterr().err
