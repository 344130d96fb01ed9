"""Parsing, cleaning, splitting and sampling the UCI data: both real formats and every kind of bad input."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest

from model.artifact import read_metadata, write_metadata
from training_jobs.config import splits_dir
from training_jobs.data import (
    DataError,
    Example,
    clean,
    load_splits,
    normalise_title,
    read_examples,
    recorded_sample,
    split,
    splits_of_model,
    stratified_sample,
)

HEADER = "category\ttitle\tpublisher\tid\tstory\thostname\ttimestamp\turl\n"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_reads_headed_tsv_with_csv_quoting(tmp_path: Path) -> None:
    path = write(tmp_path / "x.tsv", HEADER + 'b\t"Fed says ""no"" to rate cut"\tReuters\t1\ts1\th\t1\tu\n'
                                      "e\tStar weds\tDaily Mail\t2\ts2\th\t2\tu\n")
    assert read_examples(path) == [Example('Fed says "no" to rate cut', "b", "Reuters", "s1"),
                                   Example("Star weds", "e", "Daily Mail", "s2")]


def test_reads_raw_uci_news_corpora_without_quoting(tmp_path: Path) -> None:
    rows = ['1\tFed "official" says rates stay\thttp://x\tReuters\tb\tdA1\twww.r.com\t1394470370698',
            "2\tNew vaccine trial\thttp://y\tWebMD\tm\tdB2\twww.w.com\t1394470371207"]
    path = write(tmp_path / "newsCorpora.csv", "\n".join(rows) + "\n")
    assert read_examples(path) == [Example('Fed "official" says rates stay', "b", "Reuters", "dA1"),
                                   Example("New vaccine trial", "m", "WebMD", "dB2")]


def test_reads_a_comma_separated_header_like_kaggles_copy(tmp_path: Path) -> None:
    path = write(tmp_path / "uci-news-aggregator.csv", 'ID,TITLE,URL,PUBLISHER,CATEGORY\n1,"Fed, again",u,Reuters,b\n')
    assert read_examples(path) == [Example("Fed, again", "b", "Reuters")]


def test_reads_gzipped_files(tmp_path: Path) -> None:
    path = write(tmp_path / "x.tsv.gz", gzip.compress((HEADER + "t\tNew phone\tP\t1\ts\th\t1\tu\n").encode()))
    assert read_examples(path) == [Example("New phone", "t", "P", "s")]


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty file"),
    ("\n\n", "empty file"),
    (HEADER, "no data rows"),
    ("category\theadline\nb\tx\n", "x.tsv:1: missing column(s) ['title']"),
    (HEADER + "b\tok\tp\t1\ts\th\t1\tu\nz\tbad code\tp\t2\ts\th\t2\tu\n", "x.tsv:3: unknown category code 'z'"),
    (HEADER + "b\tshort row\n", "x.tsv:2: 2 column(s), header has 8"),
    ("1\tSome headline\turl\tpub\tb\tstory\thost\n", "x.tsv:1: unrecognised format"),
    ("1\tA headline\turl\tpub\tb\tstory\thost\t1\n2\tB headline\turl\tpub\tb\n",
     "x.tsv:2: 5 column(s); newsCorpora.csv"),
    ("1\tA headline\turl\tpub\tx\tstory\thost\t1\n", "x.tsv:1: unknown category code 'x'"),
])
def test_bad_input_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        read_examples(write(tmp_path / "x.tsv", content))


def test_wrong_encoding_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "x.tsv", (HEADER + "e\tCaf\xe9 opens\tp\t1\ts\th\t1\tu\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"x.tsv:2: not UTF-8"):
        read_examples(path)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_examples(tmp_path / "absent.tsv")


def test_clean_collapses_whitespace_drops_empty_and_duplicates() -> None:
    rows = [Example("  Stocks   rise\t", "b"), Example("   ", "b"), Example('stocks "rise"', "e"),
            Example("Stocks fall", "b")]
    kept, stats = clean(rows)
    assert kept == [Example("Stocks rise", "b"), Example("Stocks fall", "b")]
    assert (stats.read, stats.empty_titles, stats.kept) == (4, 1, 2)
    assert (stats.duplicates, stats.conflicting_duplicates) == (1, 1)


def test_normalised_title_matches_the_corpus_dedup_key() -> None:
    assert normalise_title(' Apple  "Unveils"\tiPhone ') == "apple unveils iphone"


def test_split_is_seeded_stratified_and_never_shares_a_title() -> None:
    rows = [Example(f"headline {i}", "betm"[i % 4]) for i in range(400)]
    rows += [Example("HEADLINE 7", "m"), Example("headline   11", "m")]  # same normalised titles as 7 and 11
    first, second = split(rows, seed=1), split(rows, seed=1)
    assert first == second
    assert split(rows, seed=2) != first
    keys = [{normalise_title(ex.title) for ex in part} for part in first]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert sum(len(part) for part in first) == len(rows)
    test_b = sum(ex.category == "b" for ex in first[2])
    assert test_b == 10  # 10% of the 100 business titles


def test_benchmark_folder_is_used_as_is_and_extra_data_never_leaks(tmp_path: Path) -> None:
    bench = splits_dir(tmp_path)
    bench.mkdir()
    write(bench / "train.tsv", HEADER + "b\tA\tp\t1\ts\th\t1\tu\nb\tA\tp\t1\ts\th\t1\tu\n")
    write(bench / "valid.tsv", HEADER + "e\tB\tp\t1\ts\th\t1\tu\n")
    write(bench / "test.tsv", HEADER + "m\tC\tp\t1\ts\th\t1\tu\n")
    extra = write(tmp_path / "extra.tsv", HEADER + "m\tc\tp\t1\ts\th\t1\tu\nt\tD\tp\t1\ts\th\t1\tu\n"
                                                   "e\tb\tp\t1\ts\th\t1\tu\n")
    splits = load_splits(tmp_path, seed=0, extra=[extra])
    assert sorted(ex.title for ex in splits.train) == ["A", "A", "D"]  # as-is, plus only the unseen extra title
    assert [ex.title for ex in splits.test] == ["C"]
    assert splits.stats["extra.tsv"].duplicates == 2


def test_single_file_is_cleaned_and_split(tmp_path: Path) -> None:
    lines = "".join(f"{'betm'[i % 4]}\theadline number {i}\tp\t{i}\ts\th\t1\tu\n" for i in range(200))
    splits = load_splits(write(tmp_path / "all.tsv", HEADER + lines + "b\tHeadline  number 0\tp\t1\ts\th\t1\tu\n"),
                         seed=3)
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (160, 20, 20)
    assert splits.stats["all.tsv"].duplicates == 1
    assert "split with seed 3" in splits.source


def test_unknown_data_path_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="neither a data file nor a folder"):
        load_splits(tmp_path, seed=0)


def test_held_out_publishers_never_train_and_form_their_own_set(tmp_path: Path) -> None:
    from training_jobs.holdout import is_held_out

    bench = splits_dir(tmp_path)
    bench.mkdir()
    write(bench / "train.tsv", HEADER + "b\tA\tReuters\t1\ts\th\t1\tu\n")
    write(bench / "valid.tsv", HEADER + "e\tB\tDaily Mail\t1\ts\th\t1\tu\n")
    write(bench / "test.tsv", HEADER + "m\tC\tReuters\t1\ts\th\t1\tu\n")
    publishers = [f"Paper {i}" for i in range(40)]
    held = {p for p in publishers if is_held_out(p, 0.3)}
    assert 0 < len(held) < len(publishers)  # the rule splits publishers, whatever the hash gives
    rows = "".join(f"t\tStory {i} by {p}\t{p}\t1\ts\th\t1\tu\n" for p in publishers for i in range(2))
    extra = write(tmp_path / "extra.tsv", HEADER + rows + "b\tNo byline\t\t1\ts\th\t1\tu\n")
    splits = load_splits(tmp_path, seed=0, extra=[extra], holdout_share=0.3)
    assert {ex.publisher for ex in splits.held_out} == held and len(splits.held_out) == 2 * len(held)
    assert not {ex.publisher for ex in splits.train} & held
    assert "No byline" in {ex.title for ex in splits.train}  # rows without a publisher are never held out
    assert load_splits(tmp_path, seed=0, extra=[extra]).held_out == []


def _judge_fixture(tmp_path: Path) -> tuple[Path, Path]:
    """An NLP-100-like folder and an extra file of two business stories, one judged at share 0.5: Paper A writes
    mostly in it, Paper B only there, Paper C only in the other."""
    from training_jobs.holdout import STORY_SALT, unit

    judged, trained = sorted(["story-x", "story-y"], key=lambda story: unit(STORY_SALT, story))
    bench = splits_dir(tmp_path)
    bench.mkdir()
    write(bench / "train.tsv", HEADER + f"b\tReuters on the judged story\tReuters\t1\t{judged}\th\t1\tu\n"
                                        f"b\tReuters on the other story\tReuters\t2\t{trained}\th\t1\tu\n")
    write(bench / "valid.tsv", HEADER + f"b\tValid row of the judged story\tReuters\t3\t{judged}\th\t1\tu\n"
                                        f"e\tValid row elsewhere\tReuters\t4\tz\th\t1\tu\n")
    write(bench / "test.tsv", HEADER + f"b\tTest row of the judged story\tReuters\t5\t{judged}\th\t1\tu\n")
    extra = write(tmp_path / "extra.tsv", HEADER
                  + f"b\tPaper A on the judged story\tPaper A\t6\t{judged}\th\t1\tu\n"
                  + f"b\tPaper A again on the judged story\tPaper A\t10\t{judged}\th\t1\tu\n"
                  + f"b\tPaper B on the judged story\tPaper B\t7\t{judged}\th\t1\tu\n"
                  + f"b\tPaper A on the other story\tPaper A\t8\t{trained}\th\t1\tu\n"
                  + f"b\tPaper C on the other story\tPaper C\t9\t{trained}\th\t1\tu\n"
                  + "b\tA title-only row\t\t\t\t\t\t\n"
                  + "b\tPaper B on the judged story\t\t\t\t\t\t\n")
    return tmp_path, extra


def test_the_judge_is_whole_stories_and_publishers_that_never_train_or_tune(tmp_path: Path) -> None:
    data, extra = _judge_fixture(tmp_path)
    splits = load_splits(data, seed=0, extra=[extra], judge_share=0.5)
    assert sorted(ex.title for ex in splits.judge) == ["Paper A again on the judged story",
                                                       "Paper A on the judged story", "Paper B on the judged story"]
    assert sorted(ex.title for ex in splits.train) == ["A title-only row", "Paper C on the other story",
                                                       "Reuters on the other story"]
    assert [ex.title for ex in splits.valid] == ["Valid row elsewhere"]  # valid tunes and calibrates: judged too
    assert len(splits.test) == 1  # the benchmark never changes
    assert [ex.title for ex in splits.held_out] == ["Paper A on the other story"]  # a judge publisher, seen story
    # A judged story by a publisher that trains: neither side (the simulated week's traffic, training_jobs.traffic_pool)
    assert sorted(ex.title for ex in splits.left_out) == ["Reuters on the judged story",
                                                          "Valid row of the judged story"]
    assert splits.judge_stats | {"sha256": ""} == {
        "share": 0.5, "sha256": "", "stories": 1, "publishers": 2, "rows": 3, "left_out": 2,
        "trained_without_story_id": 1}
    assert "story-disjoint judge at share 0.5" in splits.source
    assert load_splits(data, seed=0, extra=[extra]).judge == []


def test_the_judge_is_the_same_set_whatever_the_seed_and_row_order(tmp_path: Path) -> None:
    data, extra = _judge_fixture(tmp_path)
    first = load_splits(data, seed=0, extra=[extra], judge_share=0.5)
    second = load_splits(data, seed=7, extra=[extra], judge_share=0.5)
    assert first.judge_stats["sha256"] == second.judge_stats["sha256"]
    assert {ex.title for ex in first.judge} == {ex.title for ex in second.judge}


def test_stratified_sample_keeps_each_class_share_whole_rows_and_is_seeded() -> None:
    rows = [{"category": "betm"[i % 10 % 4], "story": f"s{i}", "publisher": f"p{i % 7}"} for i in range(1000)]
    shares = Counter(row["category"] for row in rows)  # b 300, e 300, t 200, m 200
    sample = stratified_sample(rows, 101, seed=5, category=lambda row: row["category"])
    assert len(sample) == 101
    assert {code: n / 101 for code, n in Counter(r["category"] for r in sample).items()} == pytest.approx(
        {code: n / 1000 for code, n in shares.items()}, abs=0.01)
    assert all(row in rows for row in sample) and sample == sorted(sample, key=rows.index)  # whole rows, file order
    assert sample == stratified_sample(rows, 101, seed=5, category=lambda row: row["category"])
    assert sample != stratified_sample(rows, 101, seed=6, category=lambda row: row["category"])
    assert stratified_sample(rows, 1000, seed=5, category=lambda row: row["category"]) == rows


def uci_file(path: Path, rows: int) -> Path:
    """A raw newsCorpora.csv: every class, 30 publishers, distinct titles."""
    return write(path, "".join(f"{i}\tHeadline {i} on {'betm'[i % 4]}\tu\tPaper {i % 30}\t{'betm'[i % 4]}\ts\th\t1\n"
                               for i in range(rows)))


def test_a_sample_of_one_file_nests_in_its_full_split(tmp_path: Path) -> None:
    path = uci_file(tmp_path / "newsCorpora.csv", 4000)
    full = load_splits(path, seed=3, holdout_share=0.3)
    sampled = load_splits(path, seed=3, holdout_share=0.3, sample=1000)
    for part in ("train", "valid", "test", "held_out"):
        rows = getattr(sampled, part)
        assert {ex.title for ex in rows} <= {ex.title for ex in getattr(full, part)}, part
        # The split is cut to a quarter; held-out publishers then leave each part (about a quarter of theirs too).
        assert len(rows) == pytest.approx(len(getattr(full, part)) / 4, rel=0.15), part
    assert sampled.sample == {"rows": 1000, "of": 4000, "seed": 3, "file": "newsCorpora.csv",
                              "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert full.sample is not None and full.sample["rows"] == full.sample["of"] == 4000
    assert "a 1,000-row sample of its 4,000" in sampled.source
    assert load_splits(path, seed=3, sample=1000).train == load_splits(path, seed=3, sample=1000).train


def test_a_folder_holding_one_data_file_is_that_file(tmp_path: Path) -> None:
    """A SageMaker channel: the job's train folder holds the uploaded newsCorpora.csv."""
    uci_file(tmp_path / "newsCorpora.csv", 200)
    assert load_splits(tmp_path, seed=0).sample["file"] == "newsCorpora.csv"  # type: ignore[index]
    (tmp_path / "other.csv").write_text("")
    with pytest.raises(DataError, match="or one data file"):
        load_splits(tmp_path, seed=0)


def test_a_models_recorded_sample_rebuilds_its_splits(tmp_path: Path) -> None:
    path = uci_file(tmp_path / "newsCorpora.csv", 2000)
    splits = load_splits(path, seed=13, holdout_share=0.3, sample=600)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    write_metadata(model_dir, {"hyperparameters": {"seed": 13, "holdout_publishers": 0.3},
                               "data": {"sample": splits.sample}})
    assert recorded_sample(read_metadata(model_dir)) == 600
    assert splits_of_model(model_dir, path).fingerprint() == splits.fingerprint()
    assert recorded_sample({"data": {"sample": {"rows": 2000, "of": 2000}}}) == 0
    assert recorded_sample({"data": {"sample": None}}) == recorded_sample({}) == 0
