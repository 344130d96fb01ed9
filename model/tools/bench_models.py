"""The models `make bench` measures beside the trained one: the seed-style handler and a DistilBERT-base shape.

Both exist only for measuring speed: the first re-creates what the original handler did per request, the second
has random weights in the shape the targets are set for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.artifact import PACKAGE_DIR, read_metadata, write_metadata
from model.calibration import softmax
from model.labels import LabelMap
from model.runtime import ONNX_FILES, ONNX_INT8, TORCH

if TYPE_CHECKING:
    import torch

SEED_PADDING = 512
DISTILBERT = "distilbert-base-random"
RANDOM_RECIPE = "random weights (biases and LayerNorm spread), DistilBERT-base shape: for speed measurements only"


class SeedStyleModel:
    """The original handler's behaviour: per request, a fresh tokenizer and model, inputs padded to 512 tokens."""

    def __init__(self, model_dir: Path, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.model_dir = model_dir
        self.labels = LabelMap.load(model_dir)
        self.metadata = read_metadata(model_dir)

    def predict_proba(self, titles: Sequence[str]) -> np.ndarray:
        import torch

        from model.classifier import HeadlineClassifier, load_tokenizer

        tokenizer = load_tokenizer(self.model_dir)
        model = HeadlineClassifier.from_model_dir(self.model_dir)
        encoded = tokenizer(list(titles), padding="max_length", max_length=SEED_PADDING, truncation=True,
                            return_tensors="pt")
        with torch.inference_mode():
            return softmax(model(encoded["input_ids"], encoded["attention_mask"]).numpy())


def distilbert_base_random(folder: Path, like: Path) -> Path:
    """A DistilBERT-base-shaped model folder with random weights, tokenizer, labels and max_length of `like`.

    Built once; rebuilt when the export code is newer than the folder's int8 model or the recipe changed.
    """
    int8 = folder / ONNX_FILES[ONNX_INT8]
    if (int8.is_file() and int8.stat().st_mtime > (PACKAGE_DIR / "onnx_export.py").stat().st_mtime
            and read_metadata(folder).get("note") == RANDOM_RECIPE):
        return folder
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    from model.classifier import WEIGHTS_FILE, HeadlineClassifier, load_tokenizer
    from model.onnx_export import export_model_folder

    torch.manual_seed(0)
    tokenizer, labels = load_tokenizer(like), LabelMap.load(like)
    model = HeadlineClassifier(DistilBertModel(DistilBertConfig(vocab_size=tokenizer.vocab_size)), len(labels))
    spread_vector_parameters(model)
    model.save(folder)
    tokenizer.save_pretrained(folder)
    labels.save(folder)
    write_metadata(folder, {"model_version": DISTILBERT, "max_length": read_metadata(like)["max_length"],
                            "note": RANDOM_RECIPE, "runtimes": {TORCH: [WEIGHTS_FILE]}})
    export_model_folder(folder)
    return folder


def spread_vector_parameters(model: torch.nn.Module) -> None:
    """Give biases and LayerNorm parameters small random values, as training leaves them.

    Freshly initialised, they are all zeros or all ones, the exporter merges the equal ones into one initialiser,
    and quantisation then leaves 48 nodes more than a trained model's graph has (124, not 76): the biases can no
    longer be fused into the MatMuls. Measured interleaved, that graph was 2-3% slower.
    """
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.02)
