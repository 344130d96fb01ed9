"""The ONNX predictor's own steps: tokenisation like transformers, chunked runs answered in input order; the CPUs
the runtimes size their thread pools from, wherever Python runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from model.classifier import load_tokenizer
from model.runtime import OnnxPredictor, available_cpus
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


def test_available_cpus_counts_the_affinity_mask_not_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "process_cpu_count", raising=False)  # Python before 3.13
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert available_cpus() == 2


def test_available_cpus_without_an_affinity_call_counts_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS before Python 3.13 has neither os.process_cpu_count nor os.sched_getaffinity."""
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert available_cpus() == 8
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "cannot tell" still runs one thread
    assert available_cpus() == 1


def test_available_cpus_asks_python_where_it_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.13+: os.process_cpu_count honours the affinity mask on every platform that has one."""
    monkeypatch.setattr(os, "process_cpu_count", lambda: 3, raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert available_cpus() == 3
