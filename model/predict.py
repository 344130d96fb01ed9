"""Batched prediction with the PyTorch model: shared by validation during training, evaluation and serving."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from model.artifact import read_metadata
from model.batching import length_sorted_batches
from model.calibration import Calibration, softmax
from model.classifier import HeadlineClassifier, load_tokenizer
from model.labels import LabelMap


@torch.inference_mode()
def predict_logits(model: HeadlineClassifier, tokenizer: PreTrainedTokenizerBase, titles: Sequence[str],
                   max_length: int, batch_size: int = 64, device: str | torch.device = "cpu") -> np.ndarray:
    """Logits, shape (len(titles), num_labels), in input order."""
    was_training = model.training
    model.eval()
    encoded = tokenizer(list(titles), truncation=True, max_length=max_length)["input_ids"]
    out = np.zeros((len(titles), model.head[-1].out_features), dtype=np.float32)
    for batch in length_sorted_batches([len(ids) for ids in encoded], batch_size):
        padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
        logits = model(padded["input_ids"].to(device), padded["attention_mask"].to(device))
        out[batch] = logits.float().cpu().numpy()
    model.train(was_training)
    return out


def predict_proba(model: HeadlineClassifier, tokenizer: PreTrainedTokenizerBase, titles: Sequence[str],
                  max_length: int, batch_size: int = 64, device: str | torch.device = "cpu") -> np.ndarray:
    """Uncalibrated class probabilities (softmax of the logits): what training selects epochs on."""
    return softmax(predict_logits(model, tokenizer, titles, max_length, batch_size, device)).astype(np.float32)


class TorchPredictor:
    """A trained model folder loaded once for repeated prediction with PyTorch fp32."""

    def __init__(self, model_dir: Path, batch_size: int = 64) -> None:
        self.model = HeadlineClassifier.from_model_dir(model_dir)
        self.tokenizer = load_tokenizer(model_dir)
        self.labels = LabelMap.load(model_dir)
        self.calibration = Calibration.load(model_dir)
        self.metadata = read_metadata(model_dir)
        self.max_length = int(self.metadata["max_length"])
        self.batch_size = batch_size

    def predict_proba(self, titles: Sequence[str]) -> np.ndarray:
        return self.calibration.probabilities(self.predict_logits(titles))

    def predict_logits(self, titles: Sequence[str]) -> np.ndarray:
        return predict_logits(self.model, self.tokenizer, titles, self.max_length, self.batch_size)
