"""The review queue collapses headlines as the feedback export does: the Lambda cannot import training_jobs/, so
chalicelib.review.normalised is a copy of training_jobs.data.normalise_title, pinned to it here on any text."""

from __future__ import annotations

from chalicelib.review import normalised
from hypothesis import given
from hypothesis import strategies as st

from tests.support.text_strategies import AWKWARD, headline_texts
from training_jobs.data import normalise_title

SPACES = ["\u00a0", "\u2028", "\u2029", "\u3000", "\x1c", "\x1f", "\x85", "\u200b", "\ufeff", '"', "\r\n", "\t"]


@given(st.lists(st.one_of(headline_texts(), st.sampled_from(SPACES + AWKWARD), st.sampled_from(["A", "b", "İ"])),
                max_size=8).map("".join))
def test_the_review_queue_and_the_feedback_export_normalise_alike(text: str) -> None:
    assert normalised(text) == normalise_title(text)


def test_case_quotes_and_whitespace_do_not_make_another_headline() -> None:
    assert normalised('  Gene\u00a0study\t"SURPRISES" ') == normalised("gene study surprises") == "gene study surprises"
