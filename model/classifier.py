"""The one classifier class, shared by training, evaluation, export and the SageMaker handler."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from model.labels import LabelMap

WEIGHTS_FILE = "model.safetensors"


class HeadlineClassifier(nn.Module):
    """Pretrained encoder, first-token pooling, then Linear(h, h) -> ReLU -> Dropout -> Linear(h, labels)."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.3) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size  # DistilBERT maps hidden_size to `dim`
        self.head = nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return logits of shape (batch, num_labels)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden[:, 0])

    @classmethod
    def from_encoder(cls, encoder_name_or_path: str, num_labels: int, dropout: float = 0.3) -> HeadlineClassifier:
        """Start training from pretrained encoder weights and a freshly initialised head."""
        return cls(AutoModel.from_pretrained(encoder_name_or_path), num_labels, dropout)

    @classmethod
    def from_model_dir(cls, model_dir: Path, attn_implementation: str | None = None) -> HeadlineClassifier:
        """Load a trained model folder without touching the Hub: the encoder is rebuilt from its config."""
        model_dir = Path(model_dir)
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        if attn_implementation:
            config._attn_implementation = attn_implementation
        model = cls(AutoModel.from_config(config), len(LabelMap.load(model_dir)))
        model.load_state_dict(load_file(model_dir / WEIGHTS_FILE))
        return model.eval()

    def save(self, model_dir: Path) -> None:
        """Write the weights (safetensors) and the encoder config."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        self.encoder.config.save_pretrained(model_dir)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, model_dir / WEIGHTS_FILE)


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """The fast tokenizer of an encoder or model folder (never `BertTokenizer(vocab_file=...)`)."""
    return AutoTokenizer.from_pretrained(str(name_or_path), use_fast=True)
