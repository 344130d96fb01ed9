"""Hypothesis strategies for headline text as attackers and broken clients send it, not only as the schema allows:
lone surrogates, control characters, bidirectional marks, combining marks, very long tokens and blanks."""

from __future__ import annotations

from hypothesis import strategies as st

# Code points that break text handling in practice: surrogates (valid in JSON, not in Unicode), NUL and other C0/C1
# controls, bidirectional overrides and marks, zero-width characters, BOM, noncharacters, combining marks.
AWKWARD = ["\ud800", "\udbff", "\udc00", "\udfff", "\x00", "\x1b", "\x7f", "\x85", "\u200b", "\u200e", "\u200f",
           "\u202e", "\u2066", "\u2069", "\ufeff", "\ufffe", "\uffff", "\U0010ffff", "\u0301", "\u0e47", "\t", "\n"]


def headline_texts() -> st.SearchStrategy[str]:
    """Any text up to a little over the API's limit, surrogates included, mixed with words and awkward code points."""
    any_code_point = st.characters(codec=None, exclude_categories=())
    pieces = st.one_of(
        st.text(any_code_point, max_size=40),
        st.sampled_from(AWKWARD),
        st.sampled_from(["Stocks rally", "Apple unveils iPhone", "Ebola outbreak spreads", " "]),
        st.integers(min_value=50, max_value=1100).map(lambda n: "x" * n),  # one very long token
    )
    return st.lists(pieces, max_size=6).map("".join)
