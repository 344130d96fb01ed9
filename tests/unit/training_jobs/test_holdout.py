"""The held-out rules: which stories and publishers the judge takes, the same on every machine."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from training_jobs.holdout import (
    NLP100_PUBLISHERS,
    PUBLISHER_SALT,
    STORY_SALT,
    Judge,
    choose_judge,
    is_held_out,
    judged_stories,
    unit,
)


@dataclass(frozen=True)
class Row:
    category: str
    publisher: str
    story: str


def test_the_unit_is_sha256_of_the_salted_name_so_every_machine_agrees() -> None:
    # Pinned to an independent computation: a per-process `hash()` or another digest would differ.
    assert unit(STORY_SALT, "dQ3Y2yMGIfEBQTMPmsy2ZGFJ8M2zM") == pytest.approx(
        int(hashlib.sha256(b"story-holdout:dQ3Y2yMGIfEBQTMPmsy2ZGFJ8M2zM").hexdigest()[:12], 16) / 16 ** 12)
    assert unit(STORY_SALT, "a") == pytest.approx(0.4643, abs=1e-4)
    assert unit(PUBLISHER_SALT, "Some Paper") == pytest.approx(0.918619, abs=1e-6)
    assert [is_held_out(p, 0.3) for p in ("Some Paper", "Los Angeles Times")] == [False, True]  # 0.264309


def test_the_nlp100_publishers_and_bad_shares_are_never_held_out() -> None:
    assert not any(is_held_out(p, 0.99) for p in NLP100_PUBLISHERS)
    with pytest.raises(ValueError, match="must be in"):
        is_held_out("Some Paper", 1.0)
    with pytest.raises(ValueError, match="must be in"):
        judged_stories([], -0.1)


def test_judged_stories_are_a_share_of_each_categorys_candidates() -> None:
    rows = [Row(category, "Paper", f"{category}{i}") for category in "btem" for i in range(10)]
    rows += [Row("b", "Reuters", f"nlp{i}") for i in range(10)]  # only NLP-100 publishers wrote these
    judged = judged_stories(rows, 0.3)
    for category in "btem":
        assert len({s for s in judged if s.startswith(category)}) == 3  # stratified: 30% of each category
    assert not any(s.startswith("nlp") for s in judged)  # a story no other publisher wrote judges nothing
    assert judged == judged_stories(list(reversed(rows)), 0.3)  # the order of the rows does not matter
    assert judged_stories(rows, 0.0) == frozenset()


def test_a_storys_category_is_its_rows_majority() -> None:
    rows = [Row("b", "P", "s1"), Row("b", "Q", "s1"), Row("t", "R", "s1"), Row("t", "P", "s2")]
    assert judged_stories(rows, 0.5) == {"s1", "s2"}  # one story per category, each rounds up to itself


def test_each_publisher_goes_wholly_to_the_side_holding_most_of_its_rows() -> None:
    judged, other = sorted(["s1", "s2"], key=lambda story: unit(STORY_SALT, story))  # the lower unit is judged
    rows = [Row("b", "Paper A", judged), Row("b", "Paper A", judged), Row("b", "Paper A", other),
            Row("b", "Paper B", judged), Row("b", "Paper B", other),  # a tie trains
            Row("b", "Reuters", judged), Row("b", "Reuters", judged), Row("b", "Paper C", other), Row("b", "", "")]
    judge = choose_judge(rows, 0.5)
    assert judge == Judge(frozenset({judged}), frozenset({"Paper A"}))  # NLP-100 publishers never judge
    assert [judge.judges(row) for row in rows] == [True, True, False, False, False, False, False, False, False]
    assert [judge.may_train(row) for row in rows] == [False, False, False, False, True, False, False, True, True]
    assert [judge.holds_out_publisher(row) for row in rows] == [False, False, True] + [False] * 6


def test_a_large_corpus_keeps_most_of_its_stories_for_training() -> None:
    rows = [Row(category, f"Paper {i % 7}", f"{category}{i}") for category in "btem" for i in range(100)]
    uncapped, capped = judged_stories(rows, 0.5), judged_stories(rows, 0.5, max_rows=40)
    assert len(uncapped) == 200 and len(capped) == 40  # every category lowered alike: 10 stories of each
    assert capped <= uncapped and {story[0] for story in capped} == set("btem")
