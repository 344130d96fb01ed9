"""The one classifier class: its head follows the encoder, and a saved model reloads without the encoder."""

from __future__ import annotations

from pathlib import Path

import torch

from model.classifier import HeadlineClassifier, load_tokenizer


def test_classifier_head_shape_follows_the_encoder(tiny_encoder_dir: Path) -> None:
    model = HeadlineClassifier.from_encoder(str(tiny_encoder_dir), num_labels=4)
    linear_in, relu, dropout, linear_out = model.head
    assert (linear_in.in_features, linear_in.out_features, linear_out.out_features) == (32, 32, 4)
    assert isinstance(relu, torch.nn.ReLU) and dropout.p == 0.3
    batch = load_tokenizer(tiny_encoder_dir)(["Stocks rise", "A much longer headline about the markets"],
                                             padding=True, return_tensors="pt")
    assert model(batch["input_ids"], batch["attention_mask"]).shape == (2, 4)


def test_saved_classifier_reloads_identically_without_the_encoder(tiny_model_copy: Path) -> None:
    first = HeadlineClassifier.from_model_dir(tiny_model_copy)
    first.save(tiny_model_copy)
    second = HeadlineClassifier.from_model_dir(tiny_model_copy)
    ids = torch.tensor([[101, 7045, 4125, 102]])
    mask = torch.ones_like(ids)
    assert torch.equal(first(ids, mask), second(ids, mask))
