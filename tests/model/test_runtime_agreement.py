"""The three serving runtimes agree on real headlines: ONNX fp32 equals PyTorch, int8 stays close."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from model.labels import LabelMap
from model.onnx_export import export_model_folder
from model.runtime import load_predictor
from training_jobs.data import clean, read_examples

pytestmark = pytest.mark.slow
HEADLINES = 600


@pytest.fixture(scope="module")
def exported_model(small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(shutil.copytree(small_model_dir, tmp_path_factory.mktemp("agreement") / "model"))
    export_model_folder(folder)
    return folder


@pytest.fixture(scope="module")
def test_split(data_dir: Path) -> tuple[list[str], np.ndarray]:
    examples, _ = clean(read_examples(data_dir / "nlp100" / "test.tsv"), dedupe=False)
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
