"""The A/B report's replay: its statistics on hand-made answers (agreement, Cohen's kappa, the cross table, McNemar's
exact test), and the replay itself with a fake classify function: batches of 32, the same headlines to every variant,
the reviewed headlines collapsed as the review queue collapses them, and an endpoint that fails reported, not fatal."""

from __future__ import annotations

import math

import pytest
from rich.console import Console
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from chalice_app.chalicelib.model_client import ModelAnswer, ModelCallError, Prediction
from chalice_app.reports import ab_replay
from chalice_app.reports.ab_render import print_replay
from chalice_app.reports.ab_replay import Logged, agreement, mcnemar_exact, paired_accuracy, replay

LABELS = ["Business", "Entertainment", "Health", "Science"]


def test_agreement_kappa_and_cross_table_on_hand_made_answers() -> None:
    control = ["Business", "Business", "Science", "Health", "Entertainment", "Business", "Science", "Health"]
    treatment = ["Business", "Science", "Science", "Health", "Business", "Business", "Science", "Science"]
    result = agreement(control, treatment)
    assert (result.headlines, result.agree, result.rate) == (8, 5, 5 / 8)
    assert result.labels == LABELS
    assert result.cross_table == [[2, 0, 0, 1],   # control Business: 2 kept, 1 became Science
                                  [1, 0, 0, 0],   # control Entertainment became Business
                                  [0, 0, 1, 1],
                                  [0, 0, 0, 2]]
    # kappa by hand: observed 5/8; chance sum(row share x column share) = (3*3 + 1*0 + 2*1 + 2*4) / 64 = 19/64
    assert result.kappa == pytest.approx((5 / 8 - 19 / 64) / (1 - 19 / 64))
    assert result.kappa == pytest.approx(cohen_kappa_score(control, treatment))
    interval = binomtest(5, 8).proportion_ci(method="wilson")
    assert result.rate_ci95 == pytest.approx((interval.low, interval.high))


def test_kappa_is_one_for_identical_answers_and_undefined_when_one_label_explains_all() -> None:
    assert agreement(["Health", "Science", "Health"], ["Health", "Science", "Health"]).kappa == pytest.approx(1.0)
    constant = agreement(["Health"] * 4, ["Health"] * 4)
    assert (constant.rate, constant.kappa, constant.cross_table) == (1.0, None, [[4]])
    empty = agreement([], [])
    assert (empty.headlines, empty.rate, empty.rate_ci95, empty.kappa) == (0, None, None, None)
    with pytest.raises(ValueError, match="not the same headlines"):
        agreement(["Health"], [])


def test_paired_accuracy_and_mcnemar_on_the_discordant_pairs() -> None:
    truth = ["Health"] * 10 + ["Science"] * 4
    control = ["Science"] * 9 + ["Health"] + ["Science"] * 4  # right on 5: one Health, four Science
    treatment = ["Health"] * 10 + ["Science"] * 3 + ["Health"]  # right on 13
    result = paired_accuracy(truth, control, treatment)
    assert (result.headlines, result.control_correct, result.treatment_correct) == (14, 5, 13)
    assert (result.treatment_only, result.control_only) == (9, 1)
    assert result.mcnemar_p == pytest.approx(2 * (1 + 10) / 2 ** 10)  # exact two-sided binomial, 9 of 10 at 0.5
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == pytest.approx(1.0)
    assert paired_accuracy([], [], []).mcnemar_p is None


def reviewed(headline: str, label: str) -> Logged:
    return Logged(headline, True, label)


def answered(headline: str) -> Logged:
    return Logged(headline, True, None)


def test_reviewed_headlines_are_collapsed_as_the_queue_collapses_them_each_with_the_operators_label() -> None:
    logged = [reviewed("Gene study surprises", "Science"), reviewed('  GENE  study "surprises" ', "Science"),
              reviewed("gene study surprises", "Health"), reviewed("Clinic trial pauses", "Health"),
              answered("Clinic trial pauses"), answered("Markets rally")]
    assert ab_replay.reviewed_headlines(logged) == {"Gene study surprises": "Science", "Clinic trial pauses": "Health"}


def test_the_traffic_sample_is_distinct_answered_headlines_capped_and_seeded() -> None:
    logged = [answered(f"Headline {i}") for i in range(100)] + [answered("headline 7 ")] + \
        [Logged("Refused one", False, None)]
    sample = ab_replay.traffic_sample(logged, 40)
    assert len(sample) == len(set(sample)) == 40 and "Refused one" not in sample
    assert ab_replay.traffic_sample(logged, 40) == sample  # the same window, the same sample
    assert ab_replay.traffic_sample(logged, 40, seed=1) != sample
    assert sorted(ab_replay.traffic_sample(logged, 1000)) == sorted(f"Headline {i}" for i in range(100))


class FakeEndpoints:
    """Endpoints that label by rule, record every call, and can fail on a chosen call."""

    def __init__(self, rules: dict[str, object], fail: dict[str, int] | None = None) -> None:
        self.rules = rules
        self.fail = fail or {}
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, headlines: list[str], endpoint: str) -> ModelAnswer:
        self.calls.append((endpoint, headlines))
        if sum(name == endpoint for name, _ in self.calls) == self.fail.get(endpoint):
            try:
                raise ConnectionRefusedError("connection refused by 127.0.0.1:9")
            except ConnectionRefusedError as cause:
                raise ModelCallError(503, "model_unavailable", "the model endpoint cannot be reached") from cause
        rule = self.rules[endpoint]
        predictions = [Prediction(label, {name: 0.7 if name == label else 0.1 for name in LABELS})
                       for label in map(rule, headlines)]  # type: ignore[arg-type]
        return ModelAnswer(predictions, f"{endpoint}-model", None, 3.0)


def by_number(headline: str) -> str:
    return LABELS[int(headline.split()[-1]) % 4]


def shifted(headline: str) -> str:
    """The control's rule, except that every fifth headline is called Science."""
    return "Science" if int(headline.split()[-1]) % 5 == 0 else by_number(headline)


WINDOW = [answered(f"Story {i}") for i in range(90)] + [reviewed(f"Story {i}", "Health") for i in range(90, 100)]


def test_every_variant_gets_the_same_headlines_in_batches_of_32_and_the_answers_are_compared() -> None:
    fake = FakeEndpoints({"news-v3": by_number, "news-v4": shifted})
    result = replay(WINDOW, "news-v3", ["news-v3", "news-v4"], 70, classify=fake)
    assert len(result.traffic) == 70 and len(result.reviewed) == 10
    sent = {name: [h for endpoint, batch in fake.calls if endpoint == name for h in batch] for name in result.variants}
    assert sent["news-v3"] == sent["news-v4"]
    assert set(sent["news-v3"]) == set(result.traffic) | set(result.reviewed)  # each headline once
    assert len(sent["news-v3"]) == len(set(sent["news-v3"]))
    assert max(len(batch) for _, batch in fake.calls) == 32  # at most 32 headlines per InvokeEndpoint call
    assert len(fake.calls) == 2 * math.ceil(len(sent["news-v3"]) / 32)

    (comparison,) = result.comparisons
    expected = sum(by_number(h) == shifted(h) for h in result.traffic)
    assert (comparison.traffic.headlines, comparison.traffic.agree) == (70, expected)
    accuracy = comparison.reviewed_accuracy
    health = [h for h in result.reviewed if by_number(h) == "Health"]  # Story 90, 94, 98
    assert (accuracy.headlines, accuracy.control_correct) == (10, len(health))
    assert accuracy.treatment_correct == sum(shifted(h) == "Health" for h in result.reviewed)
    assert result.variants["news-v4"].model_versions == ["news-v4-model"] and not result.failed


def test_an_endpoint_that_fails_is_reported_and_left_out_of_the_comparisons() -> None:
    fake = FakeEndpoints({"news-v3": by_number, "news-v4": shifted, "news-v5": by_number}, fail={"news-v4": 2})
    result = replay(WINDOW, "news-v3", ["news-v3", "news-v4", "news-v5"], 100, classify=fake)
    assert result.failed == {"news-v4": "the model endpoint cannot be reached: connection refused by 127.0.0.1:9 "
                                        "(after 32 of 100 headlines)"}
    assert result.variants["news-v4"].labels == {}
    assert [c.treatment for c in result.comparisons] == ["news-v5"]
    assert sum(endpoint == "news-v4" for endpoint, _ in fake.calls) == 2  # no call after the failure
    console = Console(record=True, width=200)
    print_replay(result, console)
    assert "news-v4: no answers: the model endpoint cannot be reached" in console.export_text()


def test_a_failed_control_leaves_nothing_to_compare() -> None:
    fake = FakeEndpoints({"news-v3": by_number, "news-v4": shifted}, fail={"news-v3": 1})
    result = replay(WINDOW, "news-v3", ["news-v3", "news-v4"], 10, classify=fake)
    assert list(result.failed) == ["news-v3"] and result.comparisons == []
