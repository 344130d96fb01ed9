"""A complete model folder in a second, without training: the tiny encoder under a randomly initialised head.

Its answers mean nothing; it exists so that a fast test can load and serve a real folder through the real code.
"""

from __future__ import annotations

from pathlib import Path

from model.artifact import write_metadata
from model.classifier import WEIGHTS_FILE, HeadlineClassifier, load_tokenizer
from model.labels import LabelMap

MAX_LENGTH = 32


def untrained_model_folder(encoder_dir: Path, folder: Path) -> Path:
    """Weights, encoder config, tokenizer, labels and the metadata serving reads, as training writes them."""
    labels = LabelMap.default()
    HeadlineClassifier.from_encoder(str(encoder_dir), len(labels)).save(folder)
    load_tokenizer(encoder_dir).save_pretrained(folder)
    labels.save(folder)
    write_metadata(folder, {"model_version": "untrained-tiny", "max_length": MAX_LENGTH,
                            "runtimes": {"torch": [WEIGHTS_FILE]}})
    return folder
