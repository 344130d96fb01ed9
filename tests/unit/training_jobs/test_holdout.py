"""Held-out publishers: a pure function of the name, the same on every machine, never an NLP-100 publisher."""

from __future__ import annotations

import pytest


def test_the_nlp100_publishers_and_bad_shares_are_never_held_out() -> None:
    from training_jobs.holdout import NLP100_PUBLISHERS, is_held_out

    assert not any(is_held_out(p, 0.99) for p in NLP100_PUBLISHERS)
    with pytest.raises(ValueError, match="must be in"):
        is_held_out("Some Paper", 1.0)


def test_each_publishers_number_is_pinned_so_every_machine_and_process_agrees() -> None:
    """Values written down once: a per-process `hash()`, another salt or digest would move them."""
    from training_jobs.holdout import is_held_out, publisher_unit

    assert publisher_unit("Some Paper") == pytest.approx(0.918619, abs=1e-6)
    assert publisher_unit("Los Angeles Times") == pytest.approx(0.264309, abs=1e-6)
    assert [is_held_out(p, 0.3) for p in ("Some Paper", "Los Angeles Times")] == [False, True]
