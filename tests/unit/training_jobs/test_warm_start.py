"""The warm start's training rows: the new labels (never a valid, test or judge title) plus a seeded replay sample of
the old training rows; and, end to end on a tiny model, a folder that keeps the recipe and the judge."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.artifact import read_metadata
from training_jobs.data import Example, Splits
from training_jobs.warm_start import FineTune, fine_tune_splits, new_rows, warm_start

OLD = [Example(f"Old headline {i}", "b") for i in range(30)]


def splits() -> Splits:
    return Splits(list(OLD), [Example("A valid headline", "e")], [Example("A test headline", "m")], "",
                  judge=[Example("A judged headline", "t")])


def test_new_rows_never_include_a_title_that_validates_tests_or_judges(tmp_path: Path) -> None:
    labels = tmp_path / "labels.tsv"
    labels.write_text("category\ttitle\nb\tA fresh headline\ne\ta VALID headline\nt\tA judged headline\n"
                      "b\tA fresh headline\n")
    assert [ex.title for ex in new_rows(labels, splits())] == ["A fresh headline"]
    assert new_rows(None, splits()) == []


def test_training_is_the_new_rows_plus_a_seeded_replay_of_other_old_rows() -> None:
    new = [Example("Old headline 3", "t"), Example("A fresh headline", "b")]  # a relabelled old title: new wins
    tuned, replayed = fine_tune_splits(splits(), new, replay=10, seed=0)
    assert replayed == 10 and len(tuned.train) == 12
    assert set(new) <= set(tuned.train) and Example("Old headline 3", "b") not in tuned.train
    assert fine_tune_splits(splits(), new, 10, seed=0)[0].train == tuned.train
    assert fine_tune_splits(splits(), new, 10, seed=1)[0].train != tuned.train
    assert tuned.valid == splits().valid and tuned.judge == splits().judge  # what calibrates and judges stays
    assert fine_tune_splits(splits(), [], replay=100, seed=0)[1] == 30  # at most every old row


@pytest.mark.slow
def test_a_warm_start_continues_the_model_keeps_its_recipe_and_judge(
        tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.tsv"
    labels.write_text("category\ttitle\nb\tBrent crude falls below $100\nm\tEbola vaccine trial begins\n")
    record = warm_start(tiny_model_dir, tmp_path / "out", data_dir, labels, FineTune(replay=40, seed=3))
    source = read_metadata(tiny_model_dir)
    assert record["hyperparameters"] == source["hyperparameters"]  # `make retrain` inherits the recipe, not this
    assert record["warm_start"] | {"labels": ""} == {"from": source["model_version"], "labels": "", "new_rows": 2,
                                                     "replayed": 40, "epochs": 1, "learning_rate": 3e-5,
                                                     "head_learning_rate": 3e-4, "replay": 40, "seed": 3}
    assert record["data"]["judge"]["sha256"] == source["data"]["judge"]["sha256"]
    assert read_metadata(tmp_path / "out")["model_version"] == record["model_version"] != source["model_version"]
