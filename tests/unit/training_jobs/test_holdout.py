"""Held-out publishers: a pure function of the name, never an NLP-100 publisher."""

from __future__ import annotations

import pytest


def test_the_nlp100_publishers_and_bad_shares_are_never_held_out() -> None:
    from training_jobs.holdout import NLP100_PUBLISHERS, is_held_out

    assert not any(is_held_out(p, 0.99) for p in NLP100_PUBLISHERS)
    assert is_held_out("Some Paper", 0.3) == is_held_out("Some Paper", 0.3)  # a pure function of the name
    with pytest.raises(ValueError, match="must be in"):
        is_held_out("Some Paper", 1.0)
