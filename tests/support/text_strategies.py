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


# What the contracts say a headline must be, written here from the documents rather than taken from the code under
# test, so a check that refuses too much fails as surely as one that refuses too little.

def is_unicode_text(text: str) -> bool:
    """No lone UTF-16 surrogate: JSON can escape one, UTF-8 cannot encode it."""
    return not any(0xD800 <= ord(character) <= 0xDFFF for character in text)


def model_server_accepts(text: str) -> bool:
    """docs/serving.md: a headline is a non-blank string (Python's whitespace) of valid Unicode text."""
    return bool(text.strip()) and is_unicode_text(text)


def api_headline_status(text: str, max_chars: int) -> int:
    """chalice_app/openapi.yaml: 400 for text that is not Unicode or holds nothing but whitespace (Python's, and
    the byte order mark ECMAScript adds), 413 above `max_chars` characters, else classified (200)."""
    if not is_unicode_text(text) or all(c.isspace() or c == "\ufeff" for c in text):
        return 400
    return 413 if len(text) > max_chars else 200
