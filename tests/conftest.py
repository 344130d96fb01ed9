"""Shared fixtures: real data paths and small trained model folders built by the real training code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from training_jobs.config import default_data_dir

# Labelled rows of the real NLP-100 split, enough for the model tests to learn something real.
SMALL_TRAIN_ROWS = 3000


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if not (path / "nlp100" / "train.tsv").is_file():
        pytest.fail(f"real data not found at {path}; set NEWS_DATA_DIR to the news_aggregator folder")
    return path


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised, tiny DistilBERT with the real uncased vocabulary: exercises the real class fast."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    from model.encoders import embedded_encoder_dir

    folder = tmp_path_factory.mktemp("tiny_distilbert")
    tokenizer = AutoTokenizer.from_pretrained(embedded_encoder_dir())
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128)
    DistilBertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _train(args: list[str]) -> dict:
    from training_jobs.train import parse_args, train

    return train(parse_args(args))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path, data_dir: Path) -> Path:
    """A complete model folder (tiny DistilBERT, 1 epoch on 400 real rows): for plumbing, not accuracy."""
    folder = tmp_path_factory.mktemp("tiny_model")
    _train(["--base-model", str(tiny_encoder_dir), "--data", str(data_dir), "--model-dir", str(folder),
            "--limit", "400", "--epochs", "1", "--max-length", "32"])
    return folder


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The embedded encoder fine-tuned on a real subset in CI: the subject of the behavioural tests."""
    folder = tmp_path_factory.mktemp("small_model")
    _train(["--base-model", "embedded", "--data", str(data_dir), "--model-dir", str(folder),
            "--limit", str(SMALL_TRAIN_ROWS), "--epochs", "2"])
    return folder


@pytest.fixture
def tiny_model_copy(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A private copy for tests that modify a model folder."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
