"""Training leaves the encoder's word embeddings as they came (`freeze_embeddings`, on by default): bit for bit in
the model folder it writes, while the layers above them learn."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from model.classifier import WEIGHTS_FILE

WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
A_LAYER_ABOVE = "transformer.layer.0.attention.q_lin.weight"


def test_the_word_embeddings_are_bit_identical_after_training(tiny_model_dir: Path, tiny_encoder_dir: Path) -> None:
    assert json.loads((tiny_model_dir / "training.json").read_text())["hyperparameters"]["freeze_embeddings"]
    trained, pretrained = load_file(tiny_model_dir / WEIGHTS_FILE), load_file(tiny_encoder_dir / WEIGHTS_FILE)
    assert torch.equal(trained[f"encoder.{WORD_EMBEDDINGS}"], pretrained[WORD_EMBEDDINGS])
    assert not torch.equal(trained[f"encoder.{A_LAYER_ABOVE}"], pretrained[A_LAYER_ABOVE])  # training did train
