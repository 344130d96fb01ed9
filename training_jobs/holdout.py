"""Which publishers never train: the publisher-held-out check, and the publishers the temperature is fitted on.

NLP-100 test comes from the same five publishers as the training split, so it cannot tell how the model does on
the rest of the news. Each publisher gets a fixed number in [0, 1) from a salted hash of its name; below
`--holdout-publishers` its headlines are the held-out check (no model trains, tunes or calibrates on them), in the
next `--calibration-publishers` they join the validation split for fitting the temperature only. Both shares are
recorded in `training.json`. The choice depends on the name alone, so it is the same for every data file, seed
and machine, and a publisher is never split between roles. The five NLP-100 publishers and rows without a
publisher always train.
"""

from __future__ import annotations

import hashlib

NLP100_PUBLISHERS = frozenset({"Reuters", "Huffington Post", "Businessweek", "Contactmusic.com", "Daily Mail"})
SALT = "publisher-holdout"
HELD_OUT, CALIBRATION = "held_out", "calibration"


def publisher_unit(publisher: str) -> float:
    """A fixed pseudo-random number in [0, 1) per publisher name."""
    return int(hashlib.sha256(f"{SALT}:{publisher}".encode()).hexdigest()[:12], 16) / 16 ** 12


def publisher_role(publisher: str, holdout_share: float, calibration_share: float = 0.0) -> str | None:
    """HELD_OUT, CALIBRATION, or None for a publisher whose rows may train."""
    if not (holdout_share >= 0 and calibration_share >= 0 and holdout_share + calibration_share < 1):
        raise ValueError(f"publisher shares {holdout_share!r} held out + {calibration_share!r} for calibration "
                         "must be >= 0 and sum to less than 1")
    if not publisher or publisher in NLP100_PUBLISHERS:
        return None
    unit = publisher_unit(publisher)
    return HELD_OUT if unit < holdout_share else CALIBRATION if unit < holdout_share + calibration_share else None


def is_held_out(publisher: str, share: float) -> bool:
    """Whether rows of this publisher belong to the check when `share` of the publishers are held out."""
    return publisher_role(publisher, share) == HELD_OUT
