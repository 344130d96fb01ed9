"""The simulated week's traffic: rows that never trained, tune, gate or judge, tagged by whether the judge asks
about their story."""

from __future__ import annotations

from pathlib import Path

from tests.unit.training_jobs.test_data import _judge_fixture
from training_jobs.data import Example, load_splits, normalise_title
from training_jobs.traffic_pool import JUDGED_STORY, SEEN_STORY, pool_rows


def test_the_pool_is_what_neither_trains_nor_judges_minus_every_split_and_held_out_title(tmp_path: Path) -> None:
    data, extra = _judge_fixture(tmp_path)
    splits = load_splits(data, seed=0, extra=[extra], judge_share=0.5)
    valid_file_titles = {normalise_title("Valid row of the judged story")}  # the export refuses valid/test titles
    rows = pool_rows(splits, splits.left_out + splits.held_out, seed=0, held_out=valid_file_titles)
    assert {(row.example.title, row.kind) for row in rows} == {("Reuters on the judged story", JUDGED_STORY),
                                                               ("Paper A on the other story", SEEN_STORY)}
    judged_or_split = {normalise_title(ex.title) for part in (splits.train, splits.valid, splits.test, splits.judge)
                       for ex in part}
    assert not judged_or_split & {normalise_title(row.example.title) for row in rows}


def test_a_title_any_split_holds_is_never_traffic_however_it_is_written_and_each_title_comes_once(
        tmp_path: Path) -> None:
    data, extra = _judge_fixture(tmp_path)
    splits = load_splits(data, seed=0, extra=[extra], judge_share=0.5)
    candidates = [Example('"Paper A on the JUDGED story"', "b", "Paper D", "story-q"),  # a judge title, re-quoted
                  Example("Fresh headline", "e", "Paper D", "story-q"),
                  Example("fresh  headline", "e", "Paper E", "story-q")]
    assert [row.example.title for row in pool_rows(splits, candidates, seed=0)] == ["Fresh headline"]


def test_the_pool_order_is_seeded() -> None:
    from training_jobs.data import Splits

    empty = Splits([], [], [], "")
    candidates = [Example(f"Headline {i}", "b") for i in range(50)]
    first, again, other = (pool_rows(empty, candidates, seed) for seed in (1, 1, 2))
    assert first == again and first != other and sorted(r.example.title for r in first) == sorted(
        ex.title for ex in candidates)
