"""`make retrain`: the candidate's recipe, the gate's verdict on real evaluations, and what a registration writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model.artifact import read_metadata, write_metadata
from model.classifier import WEIGHTS_FILE
from model.labels import LabelMap
from training_jobs.config import split_file
from training_jobs.registry import ModelRegistry
from training_jobs.retrain import candidate_train_args, main, parse_args

FINAL_BIAS = "head.3.bias"


def feedback_file(tmp_path: Path) -> Path:
    path = tmp_path / "feedback.tsv"
    path.write_text("category\ttitle\nb\tBrent crude falls below $100\nm\tEbola vaccine trial begins\n")
    return path


def relabelled(model_dir: Path, version: str) -> Path:
    """The same weights under another version: a retrained model that scores exactly like the current one."""
    metadata = read_metadata(model_dir)
    write_metadata(model_dir, {**metadata, "model_version": version})
    return model_dir


def always_health(model_dir: Path, target: Path) -> Path:
    """A degenerate candidate that answers Health for every headline: clearly worse than any trained model."""
    folder = Path(shutil.copytree(model_dir, target))
    weights = load_file(folder / WEIGHTS_FILE)
    weights["head.3.weight"] = torch.zeros_like(weights["head.3.weight"])
    weights[FINAL_BIAS] = torch.full_like(weights[FINAL_BIAS], -50.0)
    weights[FINAL_BIAS][LabelMap.load(folder).names.index("Health")] = 50.0
    save_file(weights, folder / WEIGHTS_FILE)
    return relabelled(folder, "news-20260101-000000-0000dead")


def retrain_args(tmp_path: Path, data_dir: Path, current: Path, candidate: Path, *extra: str) -> list[str]:
    return ["--feedback", str(feedback_file(tmp_path)), "--data", str(data_dir), "--current-model-dir", str(current),
            "--candidate-dir", str(candidate), "--eval-data", str(split_file(data_dir, "valid")),
            "--registry", str(tmp_path / "models"), *extra]


def test_the_candidate_reuses_the_current_recipe_with_feedback_first(tiny_model_dir: Path, tmp_path: Path) -> None:
    args = parse_args(["--feedback", "f.tsv", "--data", "data", "--extra-data", "corpus.tsv.gz",
                       "--", "--epochs", "2", "--limit", "400"])
    argv = candidate_train_args(args, tiny_model_dir, tmp_path / "out")
    assert argv[argv.index("--base-model") + 1] == read_metadata(tiny_model_dir)["hyperparameters"]["base_model"]
    assert argv[argv.index("--extra-data") + 1:argv.index("--extra-data") + 3] == ["f.tsv", "corpus.tsv.gz"]
    assert argv[argv.index("--test-data") + 1] == str(Path("data") / "nlp100" / "test.tsv")
    assert argv[-4:] == ["--epochs", "2", "--limit", "400"]  # after the inherited --epochs: the override wins
    assert "--freeze-embeddings" in argv and argv[argv.index("--freeze-embeddings") + 1] in ("true", "false")


def test_a_worse_candidate_is_rejected_and_kept_with_its_comparison(
        tiny_model_dir: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    candidate = always_health(tiny_model_dir, tmp_path / "candidate")
    assert main(retrain_args(tmp_path, data_dir, tiny_model_dir, candidate)) == 0
    assert "rejected: nothing registered" in capsys.readouterr().out
    report = json.loads((candidate / "comparison.json").read_text())
    assert report["gate"]["verdict"] == "reject"
    assert report["candidate"]["metrics"]["accuracy"] < report["current"]["metrics"]["accuracy"]
    assert report["candidate"]["per_class"]["Health"]["recall"] == 1.0
    assert report["gate"]["rows"]["test"] == report["current"]["metrics"]["n"]  # the current model re-scored
    assert report["gate"]["disagreements"]["current_only"] > 0
    assert all(check["reading"] == "worse" for check in report["gate"]["checks"])
    assert report["gate"]["rows"]["test"] == report["current"]["metrics"]["n"]  # the current model re-scored
    assert report["gate"]["disagreements"]["current_only"] > 0
    assert all(check["reading"] == "worse" for check in report["gate"]["checks"])
    assert not (tmp_path / "models" / "registry.json").exists() and not (tmp_path / "models" / "current").exists()


def test_an_equal_candidate_is_registered_as_passed_and_nothing_takes_traffic(
        tiny_model_dir: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Retraining stops at the registry: the version is recorded with the gate it passed and the version it passed
    against, servable (ONNX exported); `current` and every stage's routing wait for `make promote`."""
    candidate = relabelled(Path(shutil.copytree(tiny_model_dir, tmp_path / "candidate")),
                           "news-20260102-000000-0000beef")
    assert main(retrain_args(tmp_path, data_dir, tiny_model_dir, candidate)) == 0
    assert "make promote STAGE=local|dev|prod VERSION=news-20260102-000000-0000beef" in capsys.readouterr().out
    registry = ModelRegistry(tmp_path / "models")
    state = registry.read()
    entry = state["versions"]["news-20260102-000000-0000beef"]
    assert (entry["gate"]["verdict"], entry["gate"]["against"]) == ("promote",
                                                                    read_metadata(tiny_model_dir)["model_version"])
    assert (state["current"], state["promotions"]) == (None, [])
    assert not (tmp_path / "models" / "current").exists()
    registered, against = registry.registered("news-20260102-000000-0000beef")
    assert registered.path == registry.version_dir(registered.version) and not candidate.exists()
    assert against.path.resolve() == tiny_model_dir.resolve()
    assert {"onnx", "onnx-int8"} <= set(read_metadata(registered.path)["runtimes"])  # servable as `make local` serves
    report = json.loads((registered.path / "comparison.json").read_text())
    assert report["gate"]["verdict"] == "promote" and report["registered_to"] == str(registered.path)
    # The same weights answer every row alike: no disagreement, a gain of 0, and the registry keeps that evidence.
    assert report["gate"]["disagreements"]["candidate_only"] == report["gate"]["disagreements"]["current_only"] == 0
    assert entry["gate"]["summary"]["accuracy_gain"] == 0


@pytest.mark.parametrize(("feedback", "message"), [
    (None, "no such file"),
    ("category\ttitle\n", "no data rows"),
])
def test_missing_or_empty_feedback_stops_before_training(
        tiny_model_dir: Path, tmp_path: Path, feedback: str | None, message: str,
        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "feedback.tsv"
    if feedback is not None:
        path.write_text(feedback)
    assert main(["--feedback", str(path), "--current-model-dir", str(tiny_model_dir),
                 "--registry", str(tmp_path / "models")]) == 2
    assert message in caplog.text
    assert not (tmp_path / "models").exists()


def test_the_current_model_cannot_be_its_own_candidate(tiny_model_dir: Path, data_dir: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    assert main(retrain_args(tmp_path, data_dir, tiny_model_dir, tiny_model_dir)) == 2
    assert "nothing to compare" in caplog.text


def test_the_gate_asks_the_judge_only_when_neither_model_trained_on_it(
        tiny_model_dir: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = ModelRegistry(tmp_path / "models")
    candidate = relabelled(Path(shutil.copytree(tiny_model_dir, tmp_path / "candidate")),
                           "news-20260104-000000-0000f00d")
    assert main(retrain_args(tmp_path, data_dir, tiny_model_dir, candidate)) == 0
    report = json.loads((registry.version_dir("news-20260104-000000-0000f00d") / "comparison.json").read_text())
    judge_rows = read_metadata(tiny_model_dir)["data"]["judge"]["rows"]
    assert report["gate"]["rows"]["story_disjoint"] == judge_rows and "judge_left_out" not in report["gate"]
    assert "gate      rule: promote when the 95% lower bound" in capsys.readouterr().out

    other_judge = Path(shutil.copytree(tiny_model_dir, tmp_path / "older"))
    metadata = read_metadata(other_judge)
    write_metadata(other_judge, {**metadata, "data": {**metadata["data"], "judge": {}}})
    second = relabelled(Path(shutil.copytree(tiny_model_dir, tmp_path / "second")), "news-20260105-000000-0000cafe")
    assert main(retrain_args(tmp_path, data_dir, other_judge, second)) == 0
    report = json.loads((registry.version_dir("news-20260105-000000-0000cafe") / "comparison.json").read_text())
    assert set(report["gate"]["rows"]) == {"test", "all"}
    assert "may have trained on its rows" in report["gate"]["judge_left_out"]
    assert "story-disjoint judge left out" in capsys.readouterr().out
