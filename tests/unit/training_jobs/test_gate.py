"""The promotion gate decides on paired rows: a real gain passes, a real loss is stopped, retraining noise passes.

The rows are synthetic: the current model's answers, and the candidate's made from them by turning `gained` wrong
answers right and `lost` right answers wrong, so the true difference is known.
"""

from __future__ import annotations

import numpy as np
import pytest

from training_jobs.gate import Margins, PairedRows, decide, paired_rows

TEST_ROWS, JUDGE_ROWS = 1336, 2790  # NLP-100 test and the story-disjoint judge


def answers(n: int, correct: int, gained: int, lost: int, seed: int = 0) -> tuple[list[int], list[int], list[int]]:
    """(truth, candidate, current) on n rows with `correct` current answers right."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    current = truth.copy()
    wrong = rng.choice(n, n - correct, replace=False)
    current[wrong] = (truth[wrong] + rng.integers(1, 4, len(wrong))) % 4
    candidate = current.copy()
    right = np.flatnonzero(current == truth)
    candidate[wrong[:gained]] = truth[wrong[:gained]]
    turned = rng.choice(right, lost, replace=False)
    candidate[turned] = (truth[turned] + 1) % 4
    return truth.tolist(), candidate.tolist(), current.tolist()


def rows(**sets: tuple[int, int, int, int]) -> PairedRows:
    """PairedRows of named sets, each (n, current correct, gained, lost)."""
    made = {name: answers(*spec, seed=i) for i, (name, spec) in enumerate(sets.items())}
    return paired_rows({name: made[name][0] for name in made}, {name: made[name][1] for name in made},
                       {name: made[name][2] for name in made})


def test_a_real_gain_passes_and_reads_better() -> None:
    decision = decide(rows(test=(TEST_ROWS, 1260, 40, 10), story_disjoint=(JUDGE_ROWS, 2420, 110, 30)), Margins())
    assert decision.promote
    accuracy = next(check for check in decision.checks if check.metric == "accuracy")
    assert accuracy.gain == pytest.approx(110 / 4126) and accuracy.lower > 0 and accuracy.reading == "better"
    assert decision.mcnemar_p < 0.001


def test_a_real_loss_is_stopped_and_the_metric_named() -> None:
    decision = decide(rows(test=(TEST_ROWS, 1260, 10, 40), story_disjoint=(JUDGE_ROWS, 2420, 30, 100)), Margins())
    assert not decision.promote
    assert decision.as_dict()["verdict"] == "reject"
    assert [check.metric for check in decision.checks if check.reading == "worse"] == ["macro_f1", "accuracy"]


def test_a_loss_of_one_and_a_half_points_is_stopped_even_where_disagreements_are_many() -> None:
    decision = decide(rows(test=(TEST_ROWS, 1260, 40, 60), story_disjoint=(JUDGE_ROWS, 2420, 160, 202)), Margins())
    assert decision.checks[1].gain == pytest.approx(-62 / 4126)
    assert not decision.promote


def test_the_issues_retrain_is_not_judged_a_loss_once_the_judge_is_asked() -> None:
    """The issue's candidate (same recipe plus 11 rows): 0.9401 against 0.9513 on NLP-100 test, 1256 against 1271
    rows. Alone, 15 of 1,336 rows cannot be told from a 2-point loss; on the judge's rows too, where the two retrains
    answer alike overall, the candidate is as good as the current model within the tolerance."""
    test_only = decide(rows(test=(TEST_ROWS, 1271, 25, 40)), Margins())
    assert test_only.checks[1].candidate == pytest.approx(0.9401, abs=1e-4)
    assert test_only.checks[1].current == pytest.approx(0.9513, abs=1e-4)
    assert not test_only.promote
    with_judge = decide(rows(test=(TEST_ROWS, 1271, 25, 40), story_disjoint=(JUDGE_ROWS, 2420, 140, 140)), Margins())
    assert with_judge.promote
    assert with_judge.checks[1].reading == "not worse"


def test_the_old_half_point_margin_on_one_number_would_have_rejected_it() -> None:
    """What the gate replaced: candidate >= current - 0.005 on test's totals."""
    truth, candidate, current = answers(TEST_ROWS, 1271, 25, 40)
    accuracy = [np.mean(np.equal(side, truth)) for side in (candidate, current)]
    assert accuracy[0] < accuracy[1] - 0.005


def test_the_same_rows_give_the_same_verdict_and_bounds() -> None:
    paired = rows(test=(TEST_ROWS, 1260, 30, 35))
    first, second = decide(paired, Margins()), decide(paired, Margins())
    assert first.as_dict() == second.as_dict()


def test_a_tighter_tolerance_or_a_higher_confidence_is_harder_to_pass() -> None:
    paired = rows(test=(TEST_ROWS, 1260, 30, 36), story_disjoint=(JUDGE_ROWS, 2420, 130, 140))
    assert decide(paired, Margins()).promote
    assert not decide(paired, Margins(accuracy=0.005, macro_f1=0.005)).promote
    lower = {confidence: decide(paired, Margins(confidence=confidence)).checks[1].lower for confidence in (0.8, 0.99)}
    assert lower[0.99] < lower[0.8]


def test_identical_answers_pass_with_no_disagreement() -> None:
    decision = decide(rows(test=(TEST_ROWS, 1260, 0, 0)), Margins(accuracy=0, macro_f1=0))
    assert decision.promote and (decision.candidate_only, decision.current_only) == (0, 0)
    assert decision.mcnemar_p == 1.0


def test_the_report_gives_the_rule_rows_and_each_set() -> None:
    report = decide(rows(test=(TEST_ROWS, 1260, 30, 20), story_disjoint=(JUDGE_ROWS, 2420, 60, 50)),
                    Margins()).as_dict()
    assert report["rows"] == {"test": TEST_ROWS, "story_disjoint": JUDGE_ROWS, "all": TEST_ROWS + JUDGE_ROWS}
    assert report["disagreements"]["candidate_only"] == 90 and report["disagreements"]["current_only"] == 70
    assert report["per_set"]["test"]["candidate_only"] == 30 and report["per_set"]["story_disjoint"]["n"] == JUDGE_ROWS
    assert report["per_set"]["test"]["current"]["accuracy"] == pytest.approx(1260 / TEST_ROWS)
    assert "95% lower bound" in report["rule"] and "-0.015 in accuracy" in report["rule"]
    accuracy = report["checks"][1]
    assert accuracy["summary"].startswith(f"accuracy {accuracy['candidate']:.4f} vs {accuracy['current']:.4f}: gain +")
    assert accuracy["lower"] < accuracy["gain"] < accuracy["upper"]


def test_answers_of_different_rows_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="different rows"):
        PairedRows.of([0, 1], [0, 1], [0], ["test", "test"])
    with pytest.raises(ValueError, match="no rows"):
        PairedRows.of([], [], [], [])


@pytest.mark.parametrize(("field", "value"), [("accuracy", -0.01), ("macro_f1", float("nan")),
                                              ("accuracy", float("inf")), ("confidence", 1.0),
                                              ("confidence", 0.3), ("resamples", 10)])
def test_margins_must_make_sense(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field.replace("_", "-").replace("macro-f1", "macro-F1").split("-")[0]):
        Margins(**{field: value})
