"""The week's plan and each arm's labels: the control once per seed, every arm at every budget and seed, and an arm's
labels at k exactly its first k titles of the one export."""

from __future__ import annotations

from pathlib import Path

import pytest

from training_jobs.active_learning_week import arm_labels, parse_args, plan, titles_of
from training_jobs.data import DataError, read_examples

WEEK = {"choices": {"review": ["R1", "R2", "R3"], "random-0": ["A", "B", "C"], "random-1": ["C", "A", "B"]}}


def test_the_plan_is_the_control_then_each_arm_at_each_budget_and_seed() -> None:
    assert plan([200, 100], [0, 1]) == [
        ("none", 0, 0), ("none", 0, 1),
        ("review", 100, 0), ("review", 100, 1), ("review", 200, 0), ("review", 200, 1),
        ("random", 100, 0), ("random", 100, 1), ("random", 200, 0), ("random", 200, 1)]


def test_an_arm_at_k_is_its_first_k_titles_the_review_queue_the_same_for_every_seed() -> None:
    assert titles_of(WEEK, "review", 2, 1) == ["R1", "R2"]
    assert titles_of(WEEK, "random", 2, 1) == ["C", "A"]
    assert titles_of(WEEK, "none", 0, 0) == []


def test_arm_labels_are_the_exported_rows_of_its_titles(tmp_path: Path) -> None:
    feedback = tmp_path / "feedback.tsv"
    feedback.write_text("category\ttitle\nb\tR1\nt\tR2\ne\tA\n")
    rows = read_examples(arm_labels(feedback, ["r1", "A"], tmp_path / "arm.tsv"))
    assert [(ex.category, ex.title) for ex in rows] == [("b", "R1"), ("e", "A")]
    with pytest.raises(DataError, match="1 of the 2 labelled titles were exported"):
        arm_labels(feedback, ["R1", "never exported"], tmp_path / "arm.tsv")


def test_budgets_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--budgets", "0", "100"])


def test_a_model_without_a_judge_is_refused_before_any_traffic(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    from training_jobs import active_learning_week as week

    monkeypatch.setattr(week.retrain, "gate_sets", lambda *_: ({"test": []}, "the current model records no judge"))
    monkeypatch.setattr(week, "label_the_week", lambda *_: pytest.fail("traffic was sent"))
    args = parse_args(["--model-dir", str(tmp_path), "--data", str(tmp_path), "--run-dir", str(tmp_path / "run")])
    monkeypatch.setattr(week.LabelMap, "load", lambda _: None)
    with pytest.raises(DataError, match=r"no story-disjoint judge .*records no judge.*make train"):
        week.week(args)


def test_a_pool_smaller_than_the_largest_budget_is_refused_before_the_stack_starts(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from training_jobs import active_learning_week as week

    monkeypatch.setattr(week, "build_pool", lambda *_, **__: ([], {"rows": 0}))
    monkeypatch.setattr(week, "local_stack", lambda *_: pytest.fail("the stack was started"))
    args = parse_args(["--model-dir", str(tmp_path), "--data", str(tmp_path), "--budgets", "100", "400"])
    with pytest.raises(DataError, match=r"0 headlines .* fewer than the largest budget \(400\)"):
        week.label_the_week(args, tmp_path, None)  # type: ignore[arg-type]
