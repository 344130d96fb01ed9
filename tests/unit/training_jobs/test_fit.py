"""The epoch loop keeps the weights of the epoch best on validation (macro-F1), not the last one: a tiny model whose
validation metric is scripted to peak at the second of three epochs, in the loop and in the model folder train
writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from model.classifier import WEIGHTS_FILE, HeadlineClassifier, load_tokenizer
from model.labels import LabelMap
from training_jobs import fit as fit_module
from training_jobs import train as train_module
from training_jobs.config import Hyperparameters
from training_jobs.data import Example, Splits
from training_jobs.distributed import Distributed
from training_jobs.fit import fit
from training_jobs.train import parse_args

VALID_F1 = [0.5, 0.9, 0.4]  # epoch 2 is the best; epoch 3, the last, is worse
BEST = VALID_F1.index(max(VALID_F1))
TITLES = {"b": ["Stocks rally on profit news", "Bank shares fall"], "t": ["Google unveils a phone", "NASA probe lands"],
          "e": ["Actress wins an award", "Band releases an album"], "m": ["Flu vaccine shortage", "Cancer drug trial"]}


class ScriptedValidation:
    """Stands in for the validation metric: answers the next scripted macro-F1 and keeps the weights it scored."""

    def __init__(self, model_of: Any) -> None:
        self.scores: Iterator[float] = iter(VALID_F1)
        self.model_of = model_of
        self.weights: list[dict[str, torch.Tensor]] = []

    def __call__(self, probabilities: Any, examples: Any, labels: LabelMap) -> dict[str, float]:
        self.weights.append({k: v.detach().clone() for k, v in self.model_of().state_dict().items()})
        score = next(self.scores)
        return {"accuracy": score, "macro_f1": score}


def assert_weights_of_epoch(weights: dict[str, torch.Tensor], validation: ScriptedValidation, epoch: int) -> None:
    assert all(torch.equal(weights[name], tensor) for name, tensor in validation.weights[epoch].items())
    last = validation.weights[-1]
    assert any(not torch.equal(weights[name], last[name]) for name in last), "the last epoch changed nothing"


def test_fit_keeps_the_weights_of_the_best_validation_epoch(tiny_encoder_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = HeadlineClassifier.from_encoder(str(tiny_encoder_dir), 4)
    validation = ScriptedValidation(lambda: model)
    monkeypatch.setattr(fit_module, "evaluate_probabilities", validation)
    examples = [Example(title, code) for code, titles in TITLES.items() for title in titles]
    splits = Splits(train=examples, valid=examples, test=[], source="toy")
    hp = Hyperparameters(epochs=len(VALID_F1), train_batch_size=4, head_learning_rate=1e-2)
    fitted = fit(model, load_tokenizer(tiny_encoder_dir), splits, 16, LabelMap.default(), hp,
                 Distributed(0, 1, torch.device("cpu")))
    assert [h["valid_macro_f1"] for h in fitted.history] == VALID_F1
    assert fitted.best_state is not None
    assert_weights_of_epoch(fitted.best_state, validation, BEST)


@pytest.mark.slow  # trains
def test_train_writes_the_best_validation_epoch(tiny_encoder_dir: Path, data_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    models: list[HeadlineClassifier] = []

    def fit_and_remember(model: HeadlineClassifier, *args: Any) -> Any:
        models.append(model)
        return fit(model, *args)

    monkeypatch.setattr(train_module, "fit", fit_and_remember)
    validation = ScriptedValidation(lambda: models[0])
    monkeypatch.setattr(fit_module, "evaluate_probabilities", validation)
    model_dir = tmp_path / "model"
    args = parse_args(["--base-model", str(tiny_encoder_dir), "--data", str(data_dir), "--model-dir", str(model_dir),
                       "--limit", "64", "--epochs", str(len(VALID_F1)), "--max-length", "32"])
    result = train_module.train(args)
    assert result is not None and result["metrics"]["best_epoch"] == BEST + 1
    assert_weights_of_epoch(load_file(model_dir / WEIGHTS_FILE), validation, BEST)
