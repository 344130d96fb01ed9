"""Load profiles (step, spike) of the LoadTestShape, and the headlines the load test sends."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from loadtest.headlines import MAX_HEADLINE_CHARS, HeadlineFileError, read_headlines
from loadtest.profiles import build_profile, stage_at


def test_step_climbs_in_four_equal_steps_to_all_users_then_stops() -> None:
    stages = build_profile("step", users=32, duration_s=60, spawn_rate=8)
    assert [stage_at(stages, t) for t in (0, 14.9, 15, 30, 45, 59.9)] == [
        (8, 8), (8, 8), (16, 8), (24, 8), (32, 8), (32, 8)]
    assert stage_at(stages, 60) is None


def test_spike_bursts_to_all_users_at_once_and_comes_back() -> None:
    stages = build_profile("spike", users=32, duration_s=100, spawn_rate=4)
    assert stage_at(stages, 10) == (8, 4)
    assert stage_at(stages, 45) == (32, 32.0)  # the whole burst within one second
    assert stage_at(stages, 70) == (8, 32.0)  # the extra users leave as fast
    assert stage_at(stages, 100) is None


def test_a_profile_keeps_at_least_one_user() -> None:
    assert stage_at(build_profile("step", users=2, duration_s=8, spawn_rate=1), 0) == (1, 1)


@pytest.mark.parametrize(("name", "users", "duration", "rate", "message"), [
    ("ramp", 32, 60, 1, "unknown load profile"),
    ("step", 0, 60, 1, "users >= 1"),
    ("spike", 4, 0, 1, "positive duration"),
    ("spike", 4, 60, 0, "spawn rate"),
])
def test_impossible_profiles_are_clear_errors(name: str, users: int, duration: float, rate: float,
                                              message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_profile(name, users, duration, rate)


def test_headlines_come_from_the_title_column_and_only_sendable_ones(tmp_path: Path) -> None:
    path = tmp_path / "split.tsv"
    path.write_text("category\ttitle\tpublisher\n"
                    "b\t Fed  raises   rates \tReuters\n"
                    "t\t   \tNobody\n"
                    f"e\t{'x' * (MAX_HEADLINE_CHARS + 1)}\tLong\n"
                    "m\tEbola spreads\tWHO\n")
    assert read_headlines(path) == ["Fed raises rates", "Ebola spreads"]


def test_gzipped_uci_rows_work_too(tmp_path: Path) -> None:
    path = tmp_path / "newsCorpora.csv.gz"
    rows = ["1\tStocks rally\thttp://a\tReuters\tb\tstory\tr.com\t1394470370698",
            "2\tNew phone\thttp://b\tVerge\tt\tstory\tv.com\t1394470370699"]
    path.write_bytes(gzip.compress("\n".join(rows).encode()))
    assert read_headlines(path) == ["Stocks rally", "New phone"]


def test_the_default_test_split_gives_headlines(data_dir: Path) -> None:
    headlines = read_headlines(data_dir / "nlp100" / "test.tsv")
    assert len(headlines) > 1000
    assert all(0 < len(h) <= MAX_HEADLINE_CHARS for h in headlines)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"a\tb\tc\n", "expected a header row"),
    (b"category\ttitle\nb\t  \n", "no headline"),
    (b"category\ttitle\nb\t\xff\xfe\n", "not UTF-8"),
])
def test_unusable_files_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(HeadlineFileError, match=message):
        read_headlines(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HeadlineFileError, match="no such file"):
        read_headlines(tmp_path / "absent.tsv")
