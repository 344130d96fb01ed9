"""Length-sorted batches: every headline once, batches of similar length."""

from __future__ import annotations

from model.batching import length_sorted_batches


def test_length_sorted_batches_cover_every_index_once() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = length_sorted_batches(lengths, 3)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [lengths[i] for batch in batches for i in batch] == sorted(lengths)
