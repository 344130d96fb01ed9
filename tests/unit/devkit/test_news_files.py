"""devkit.news_files: the headlines the load tests send (the title column of a TSV or newsCorpora.csv, gzipped or
not, only sendable ones)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from devkit.news_files import MAX_HEADLINE_CHARS, HeadlineFileError, read_headlines
from training_jobs.config import split_file


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
    headlines = read_headlines(split_file(data_dir, "test"))
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
