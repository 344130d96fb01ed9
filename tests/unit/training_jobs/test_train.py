"""Training end to end on a tiny DistilBERT: artifact contents, label names, hyperparameters, entry points, and a
first run with no data (the corpus fetched from a local stand-in for UCI, or one message when it cannot be)."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

import pytest

from devkit.local_servers import unused_port
from model import encoders
from model.labels import LabelMap
from model.predict import TorchPredictor
from tests.support.archive_server import Answer, archive_server, corpus_text, uci_zip
from training_jobs import config
from training_jobs.config import LOCAL_SAMPLE_ROWS, Hyperparameters
from training_jobs.fit import build_optimizer, training_batches
from training_jobs.train import choose_max_length, main, parse_args, train
from training_jobs.uci_archive import UCI_PAGE, UCI_URL

HEADER = "category\ttitle\n"
TOY_WORDS = {"b": ["stocks", "profit", "shares", "bank"], "t": ["software", "google", "nasa", "smartphone"],
             "e": ["movie", "actress", "album", "concert"], "m": ["cancer", "vaccine", "hospital", "diet"]}
FILLER = ["today", "report", "new", "week", "says", "update", "big", "after", "amid", "plan"]


def toy_benchmark(folder: Path, rows_per_class: int = 60) -> Path:
    """A learnable toy split: each class has its own keywords, so a correct pipeline must get the names right."""
    rng = random.Random(0)
    folder.mkdir()
    for name, n in (("train", rows_per_class), ("valid", 10), ("test", 10)):
        lines = [f"{code}\t{rng.choice(words)} {rng.choice(FILLER)} {rng.choice(words)} {rng.choice(FILLER)} {i}\n"
                 for code, words in TOY_WORDS.items() for i in range(n)]
        (folder / f"{name}.tsv").write_text(HEADER + "".join(lines))
    return folder


def test_model_folder_holds_everything_inference_needs(tiny_model_dir: Path, tiny_encoder_dir: Path) -> None:
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "labels.json", "training.json", "metrics.json",
            "training_curve.png", "confusion_test.png", "code"} <= names
    meta = json.loads((tiny_model_dir / "training.json").read_text())
    assert meta["model_version"].startswith("news-")
    assert meta["encoder_type"] == "distilbert" and meta["max_length"] == 32
    assert meta["encoder_sha256"] == hashlib.sha256((tiny_encoder_dir / "model.safetensors").read_bytes()).hexdigest()
    assert len(meta["data"]["sha256"]) == 64 and meta["data"]["limit"] == 400
    assert meta["hyperparameters"]["epochs"] == 1 and meta["git_commit"]
    metrics = json.loads((tiny_model_dir / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert {"accuracy", "macro_f1", "n", "per_class", "confusion_matrix"} <= set(metrics[split])
        assert set(metrics["baseline_tfidf_logreg"][split]) >= {"accuracy", "macro_f1"}
    assert metrics["test"]["n"] == 1336


@pytest.mark.slow  # trains
def test_toy_model_answers_with_the_right_label_names(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    """The original project swapped two labels; a model that learnt the toy keywords must name them right."""
    data = toy_benchmark(tmp_path / "toy")
    args = parse_args(["--base-model", str(tiny_encoder_dir), "--data", str(data), "--model-dir",
                       str(tmp_path / "model"), "--epochs", "12", "--learning-rate", "1e-3",
                       "--head-learning-rate", "3e-3", "--train-batch-size", "16", "--freeze-embeddings", "false"])
    result = train(args)
    assert result["metrics"]["test"]["accuracy"] >= 0.9
    predictor = TorchPredictor(tmp_path / "model")
    names = dict(zip(LabelMap.default().categories, LabelMap.default().names, strict=True))
    for code, words in TOY_WORDS.items():
        probabilities = predictor.predict_proba([f"{words[0]} {words[1]} {words[2]}"])[0]
        assert predictor.labels.names[int(probabilities.argmax())] == names[code]


@pytest.mark.slow  # trains
def test_same_seed_gives_the_same_weights(tmp_path: Path, tiny_encoder_dir: Path, data_dir: Path) -> None:
    def version(folder: str, seed: str) -> str:
        args = parse_args(["--base-model", str(tiny_encoder_dir), "--data", str(data_dir), "--limit", "64",
                           "--epochs", "1", "--seed", seed, "--model-dir", str(tmp_path / folder)])
        return train(args)["metadata"]["model_version"].rsplit("-", 1)[1]

    assert version("a", "5") == version("b", "5") != version("c", "6")


def test_sagemaker_environment_supplies_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "train"))
    monkeypatch.setenv("SM_CHANNEL_TEST", str(tmp_path / "test"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "out"))
    args = parse_args(["--epochs", "2", "--learning-rate", "2e-4", "--freeze-embeddings", "False"])
    assert (args.data, args.test_data, args.model_dir, args.output_data_dir) == (
        tmp_path / "train", tmp_path / "test", tmp_path / "model", tmp_path / "out")
    assert (args.epochs, args.learning_rate, args.freeze_embeddings) == (2, 2e-4, False)
    assert args.sample == 0  # a job trains on every row of its channel


def test_a_local_run_samples_one_corpus_file_unless_told_all() -> None:
    assert parse_args([]).sample == LOCAL_SAMPLE_ROWS
    assert parse_args(["--sample", "all"]).sample == 0
    assert parse_args(["--sample", "5000"]).sample == 5000
    for bad in ("0", "-3", "lots"):
        with pytest.raises(SystemExit):
            parse_args(["--sample", bad])


@pytest.fixture
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No NEWS_DATA_DIR, no shared folder, an empty user cache (returned): a user's first run."""
    monkeypatch.delenv("NEWS_DATA_DIR", raising=False)
    monkeypatch.setattr(config, "SHARED_DATA_DIR", tmp_path / "shared" / "data" / "news_aggregator")
    monkeypatch.setenv("NEWS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_no_data_and_no_network_stops_with_one_message_naming_the_manual_path(
        fresh_clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NEWS_CORPUS_URL", f"http://127.0.0.1:{unused_port()}/news+aggregator.zip")  # nobody there
    assert main(["--model-dir", str(tmp_path / "model")]) == 2
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.exc_info is None
    for named in ("cannot reach", UCI_URL, UCI_PAGE, "make local DATA=/path/to/newsCorpora.csv", "NEWS_DATA_DIR=",
                  str(fresh_clone / "newsCorpora.csv")):
        assert named in error.getMessage()
    assert not (tmp_path / "model").exists() and list(fresh_clone.iterdir()) == []


@pytest.mark.slow  # trains
def test_a_first_run_downloads_the_corpus_and_trains_on_a_recorded_sample(
        fresh_clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_encoder_dir: Path) -> None:
    with archive_server() as server:
        server.answers["/news+aggregator.zip"] = Answer(uci_zip(corpus_text(1200)))
        monkeypatch.setenv("NEWS_CORPUS_URL", server.url("/news+aggregator.zip"))
        result = train(parse_args(["--base-model", str(tiny_encoder_dir), "--model-dir", str(tmp_path / "model"),
                                   "--epochs", "1", "--max-length", "32", "--sample", "400"]))
    data = result["metadata"]["data"]
    corpus = fresh_clone / "newsCorpora.csv"
    assert data["sample"] == {"rows": 400, "of": 1200, "seed": 13, "file": "newsCorpora.csv",
                              "file_sha256": hashlib.sha256(corpus.read_bytes()).hexdigest()}
    # Every sampled row is in one set, or left out because it crosses the judge's sides (training_jobs.holdout).
    placed = sum(sum(counts.values()) for counts in data["counts"].values()) + data["judge"]["left_out"]
    assert placed == pytest.approx(400, abs=2) and data["judge"]["rows"] > 0
    assert str(corpus) in data["source"]


def test_every_hyperparameter_has_a_flag() -> None:
    args = parse_args([])
    assert Hyperparameters(**{k: getattr(args, k) for k in Hyperparameters().as_dict()}) == Hyperparameters()


def test_max_length_comes_from_the_measured_distribution() -> None:
    assert choose_max_length([10] * 990 + [30] * 10) == 32
    assert choose_max_length([5] * 10) == 16
    assert choose_max_length([400] * 10) == 128


def test_training_batches_cover_each_example_once_with_little_padding() -> None:
    lengths = [random.Random(i).randint(5, 40) for i in range(1000)]
    batches = training_batches(lengths, 32, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 5


def test_optimizer_groups_use_both_learning_rates_and_spare_norms_from_decay(tiny_model_dir: Path) -> None:
    from model.classifier import HeadlineClassifier

    hp = Hyperparameters(learning_rate=1e-5, head_learning_rate=1e-3, weight_decay=0.1)
    groups = build_optimizer(HeadlineClassifier.from_model_dir(tiny_model_dir), hp).param_groups
    assert {(g["lr"], g["weight_decay"]) for g in groups} == {(1e-5, 0.1), (1e-5, 0.0), (1e-3, 0.1), (1e-3, 0.0)}


def test_bad_data_exits_with_a_clear_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "bad.tsv").write_text("category\ttitle\nq\tHeadline\n")
    assert main(["--data", str(tmp_path / "bad.tsv"), "--model-dir", str(tmp_path / "m")]) == 2
    assert "bad.tsv:2: unknown category code 'q'" in caplog.text


def test_hub_model_offline_exits_naming_the_embedded_option(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(encoders, "hub_reachable", lambda timeout=3.0: False)
    assert main(["--base-model", "distilbert-base-uncased", "--data", str(data_dir),
                 "--model-dir", str(tmp_path / "m")]) == 2
    assert "--base-model embedded" in caplog.text


def test_a_test_channel_replaces_the_test_split_and_leaves_train(tmp_path: Path) -> None:
    from training_jobs.data import Example, Splits
    from training_jobs.train import _with_test_override

    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "holdout.tsv").write_text(HEADER + "m\tFlu season starts early\nb\tStocks slide\n")
    splits = Splits([Example("Stocks  slide", "b"), Example("Phone launch", "t")], [Example("STOCKS SLIDE", "b")],
                    [Example("Old test", "e")], "toy")
    replaced = _with_test_override(splits, tmp_path / "test")
    assert [ex.title for ex in replaced.test] == ["Flu season starts early", "Stocks slide"]
    assert [ex.title for ex in replaced.train] == ["Phone launch"] and replaced.valid == []
    assert _with_test_override(splits, None) is splits
