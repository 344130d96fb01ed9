"""Settings of the training box: data location and default hyperparameters, read from the environment."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """`NEWS_DATA_DIR`, else the shared UCI News Aggregator folder beside the repository."""
    return Path(os.environ.get("NEWS_DATA_DIR", REPO_ROOT.parent / "shared" / "data" / "news_aggregator"))


def default_model_dir() -> Path:
    """`MODEL_DIR`, else `artifacts/model/` in the repository."""
    return Path(os.environ.get("MODEL_DIR", REPO_ROOT / "artifacts" / "model"))


@dataclass
class Hyperparameters:
    """Everything that changes the trained weights; all of it is recorded in the artifact."""

    base_model: str = "auto"
    epochs: int = 3
    train_batch_size: int = 32
    eval_batch_size: int = 128
    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 0  # 0: chosen from the measured token-length distribution
    dropout: float = 0.3
    freeze_embeddings: bool = True
    seed: int = 13

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
