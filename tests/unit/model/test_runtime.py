"""The ONNX predictor's own steps: tokenisation like transformers, chunked runs answered in input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.classifier import load_tokenizer
from model.runtime import OnnxPredictor
from training_jobs.config import split_file
from training_jobs.data import read_examples

HEADLINES = 40


@pytest.fixture(scope="module")
def titles(data_dir: Path) -> list[str]:
    """Real test headlines plus one far longer than max_length and one with unusual characters."""
    real = [example.title for example in read_examples(split_file(data_dir, "test"))[:HEADLINES]]
    return [*real, "word " * 400, "ÉTATS-UNIS: la Fed 🚀 relève ses taux"]


def test_encode_gives_the_token_ids_transformers_gives(tiny_onnx_model_dir: Path, titles: list[str]) -> None:
    predictor = OnnxPredictor(tiny_onnx_model_dir, "onnx")
    expected = load_tokenizer(tiny_onnx_model_dir)(titles, truncation=True, max_length=predictor.max_length)
    assert predictor.encode(titles) == expected["input_ids"]


def test_chunked_batch_answers_each_headline_as_if_alone(tiny_onnx_model_dir: Path, titles: list[str]) -> None:
    """Lengths differ, so the batch is sorted, split and padded; fp32 makes that invisible in the answers."""
    predictor = OnnxPredictor(tiny_onnx_model_dir, "onnx")
    alone = np.concatenate([predictor.predict_proba([title]) for title in titles])
    np.testing.assert_allclose(predictor.predict_proba(titles), alone, atol=1e-5)


@pytest.mark.parametrize("spin_wait, entry", [(True, "1"), (False, "0")])
def test_spin_wait_sets_the_session_option_and_leaves_the_answers_alone(
        tiny_onnx_model_dir: Path, titles: list[str], spin_wait: bool, entry: str) -> None:
    predictor = OnnxPredictor(tiny_onnx_model_dir, "onnx", spin_wait=spin_wait)
    options = predictor.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == entry
    np.testing.assert_allclose(predictor.predict_proba(titles),
                               OnnxPredictor(tiny_onnx_model_dir, "onnx").predict_proba(titles), atol=1e-6)
