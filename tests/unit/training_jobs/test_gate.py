"""The promotion gate: a candidate is promoted unless it is worse than the current model by more than the margin."""

from __future__ import annotations

import pytest

from training_jobs.gate import Margins, decide


def scores(accuracy: float, macro_f1: float, n: int = 1336) -> dict[str, float]:
    return {"accuracy": accuracy, "macro_f1": macro_f1, "n": n}


CURRENT = scores(0.9500, 0.9200)


def test_a_better_candidate_is_promoted() -> None:
    decision = decide(scores(0.9550, 0.9300), CURRENT, Margins())
    assert decision.promote
    assert all(check.passed for check in decision.checks)


@pytest.mark.parametrize(("candidate", "failing"), [
    (scores(0.9400, 0.9300), ["accuracy"]),
    (scores(0.9550, 0.9100), ["macro_f1"]),
    (scores(0.9000, 0.8500), ["macro_f1", "accuracy"]),
])
def test_a_worse_candidate_is_rejected_naming_the_metric(candidate: dict[str, float], failing: list[str]) -> None:
    decision = decide(candidate, CURRENT, Margins())
    assert not decision.promote
    assert [check.metric for check in decision.checks if not check.passed] == failing
    assert decision.as_dict()["verdict"] == "reject"


def test_a_candidate_within_the_margin_is_promoted() -> None:
    assert decide(scores(0.9470, 0.9160), CURRENT, Margins()).promote


def test_exactly_at_the_margin_passes_and_just_beyond_fails() -> None:
    margins = Margins(macro_f1=0.005, accuracy=0.005)
    assert decide(scores(0.9450, 0.9150), CURRENT, margins).promote
    assert not decide(scores(0.9449, 0.9150), CURRENT, margins).promote


def test_margins_are_flags_that_change_the_decision() -> None:
    candidate = scores(0.9400, 0.9100)
    assert not decide(candidate, CURRENT, Margins()).promote
    assert decide(candidate, CURRENT, Margins(macro_f1=0.02, accuracy=0.02)).promote
    assert not decide(scores(0.9499, 0.9200), CURRENT, Margins(macro_f1=0, accuracy=0)).promote


def test_the_report_says_why() -> None:
    [f1, accuracy] = decide(scores(0.9400, 0.9250), CURRENT, Margins()).as_dict()["checks"]
    assert f1["summary"] == "macro-F1 0.9250 vs 0.9200 (+0.0050, allowed -0.0050): ok"
    assert accuracy["summary"] == "accuracy 0.9400 vs 0.9500 (-0.0100, allowed -0.0050): worse"


def test_scores_of_different_data_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="different data"):
        decide(scores(0.96, 0.93, n=100), CURRENT, Margins())


@pytest.mark.parametrize("margin", [-0.01, float("nan"), float("inf")])
def test_a_margin_must_be_a_finite_non_negative_number(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        Margins(accuracy=margin)
