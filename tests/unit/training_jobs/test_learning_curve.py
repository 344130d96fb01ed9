"""The week's summary: means over seeds per arm and budget, the issue's two checks, the tables and the plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from training_jobs.learning_curve import NONE, RANDOM, REVIEW, Run, checks, markdown, means, plot, summary


def run(arm: str, labels: int, seed: int, judge: float) -> Run:
    return Run(arm, labels, seed, judge, judge - 0.1, 0.95, "promote", -0.004, 40.0)


RUNS = [run(NONE, 0, 0, 0.870), run(NONE, 0, 1, 0.872),
        run(REVIEW, 200, 0, 0.884), run(REVIEW, 200, 1, 0.886), run(REVIEW, 400, 0, 0.890), run(REVIEW, 400, 1, 0.884),
        run(RANDOM, 200, 0, 0.876), run(RANDOM, 200, 1, 0.878)]


def test_means_are_over_seeds_with_their_spread() -> None:
    table = means(RUNS)
    assert table[REVIEW, 400]["judge_accuracy"] == pytest.approx(0.887)
    assert (table[REVIEW, 400]["min"], table[REVIEW, 400]["max"], table[REVIEW, 400]["seeds"]) == (0.884, 0.890, 2)


def test_the_checks_read_the_largest_review_budget_and_review_against_random_at_200() -> None:
    found = checks(RUNS)
    assert found["review_over_none"]["gain"] == pytest.approx(0.016) and found["review_over_none"]["met"]
    assert found["review_over_random"]["gain"] == pytest.approx(0.008) and found["review_over_random"]["met"]
    worse = [*RUNS[:6], run(RANDOM, 200, 0, 0.884), run(RANDOM, 200, 1, 0.884)]
    assert checks(worse)["review_over_random"]["met"] is False


def test_a_check_without_its_runs_says_not_measured() -> None:
    found = checks([r for r in RUNS if r.arm != RANDOM])
    assert found["review_over_random"] == {"what": "review queue over random at 200", "gain": None,
                                           "at_least": 0.005, "met": None}
    assert "not measured" in markdown(summary([r for r in RUNS if r.arm != RANDOM], {}))


def test_the_markdown_has_every_run_the_means_and_the_verdicts() -> None:
    text = markdown(summary(RUNS, {"model": "news-x"}))
    assert text.count("| review | 400 |") == 3  # two seeds and the mean
    assert "| review | 400 | 2 | 0.8870 (0.8840-0.8900) |" in text
    assert "review queue at 400 labels over no labels: +1.60 points (at least +1.0): **met**" in text


def test_the_plot_is_written(tmp_path: Path) -> None:
    path = plot(RUNS, tmp_path / "curve.png", "a week")
    assert path.read_bytes().startswith(b"\x89PNG")
