"""The benchmark reads its test split as training does: tools may not import training_jobs, so this pins bench's
small reader to `training_jobs.data` on a TSV holding the awkward rows of the real split."""

from __future__ import annotations

from pathlib import Path

from model.tools.bench import read_test_split
from training_jobs.data import clean, read_examples

ROWS = [
    "category\ttitle\tpublisher",
    "b\tFed leaves rates unchanged\tReuters",
    'e\t"Time For ""Transformers: Age Of Extinction"" To Prove Its Metal  ..."\tContactmusic.com',
    'b\t"""Unusual"" mix of negative growth, strong jobs"\tReuters',
    't\t"  Apple   unveils\tnew iPhone  "\tThe Verge',
    "m\t   \tNobody",
    "e\tA headline with a \"quote\" inside\tVariety",
]


def test_bench_reads_the_same_headlines_and_categories_as_training(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    path.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    examples, _ = clean(read_examples(path), dedupe=False)
    titles, categories = read_test_split(path)
    assert titles == [example.title for example in examples]
    assert categories == [example.category for example in examples]
    assert 'Time For "Transformers: Age Of Extinction" To Prove Its Metal ...' in titles and len(titles) == 5
