"""devkit/news_files.py reads the formats training_jobs/data.py reads, and keeps its own reader because a training
job ships training_jobs/ only (with model/): these tests pin the tools' reader, and its default file, to training's."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from devkit.news_files import MAX_HEADLINE_CHARS, default_headlines, read_headlines, read_labelled_headlines
from training_jobs.config import default_data_dir, split_file
from training_jobs.data import clean, collapse_whitespace, read_examples

UCI_ROW = "1\t{title}\thttp://example.com/1\tReuters\tb\tstory-1\texample.com\t1394470370698\n"


@pytest.mark.parametrize("data_dir", [None, "/somewhere/else"])
def test_the_default_headlines_are_the_default_test_split(data_dir: str | None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if data_dir is None:
        monkeypatch.delenv("NEWS_DATA_DIR", raising=False)
    else:
        monkeypatch.setenv("NEWS_DATA_DIR", data_dir)
    assert default_headlines() == split_file(default_data_dir(), "test")


def as_training_reads_them(path: Path) -> list[str]:
    titles = (collapse_whitespace(example.title) for example in read_examples(path))
    return [title for title in titles if title and len(title) <= MAX_HEADLINE_CHARS]


def test_the_real_files_give_the_titles_training_reads(data_dir: Path) -> None:
    for path in (split_file(data_dir, "test"), data_dir / "corpus.tsv.gz"):
        assert read_headlines(path) == as_training_reads_them(path), path


@pytest.mark.parametrize(("name", "text"), [
    ("quoted.tsv", 'category\ttitle\nb\t"Fed says ""no"" to\trates"\nt\tPlain   title\n'),
    ("uci.csv", UCI_ROW.format(title='"Quotes" stay in raw UCI rows')),
    ("wide.tsv.gz", "title\tcategory\tpublisher\n  Spaces\u2003around  \tm\tAP\n"),
])
def test_both_layouts_give_the_titles_training_reads(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    assert read_headlines(path) == as_training_reads_them(path)


AWKWARD_ROWS = [
    "category\ttitle\tpublisher",
    "b\tFed leaves rates unchanged\tReuters",
    'e\t"Time For ""Transformers: Age Of Extinction"" To Prove Its Metal  ..."\tContactmusic.com',
    'b\t"""Unusual"" mix of negative growth, strong jobs"\tReuters',
    't\t"  Apple   unveils\tnew iPhone  "\tThe Verge',
    "m\t   \tNobody",
    "e\tA headline with a \"quote\" inside\tVariety",
]


def test_the_benchmark_reads_the_same_headlines_and_categories_as_training(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    path.write_text("\n".join(AWKWARD_ROWS) + "\n", encoding="utf-8")
    examples, _ = clean(read_examples(path), dedupe=False)
    titles, categories = read_labelled_headlines(path)
    assert titles == [example.title for example in examples]
    assert categories == [example.category for example in examples]
    assert 'Time For "Transformers: Age Of Extinction" To Prove Its Metal ...' in titles and len(titles) == 5
