"""The publisher-held-out rule: whole publishers whose headlines no model trains, tunes or calibrates on.

NLP-100 test comes from the same five publishers as the training split, so it cannot tell how the model does on
the rest of the news. A publisher is held out when a salted hash of its name falls below the share asked for
(`--holdout-publishers`, recorded in `training.json`): the choice depends on the name alone, so it is the same
for every data file, seed and machine, and a publisher is never split between training and the check. The five
NLP-100 publishers and rows without a publisher are never held out.
"""

from __future__ import annotations

import hashlib

NLP100_PUBLISHERS = frozenset({"Reuters", "Huffington Post", "Businessweek", "Contactmusic.com", "Daily Mail"})
SALT = "publisher-holdout"


def publisher_unit(publisher: str) -> float:
    """A fixed pseudo-random number in [0, 1) per publisher name."""
    return int(hashlib.sha256(f"{SALT}:{publisher}".encode()).hexdigest()[:12], 16) / 16 ** 12


def is_held_out(publisher: str, share: float) -> bool:
    """Whether rows of this publisher belong to the check when `share` of the publishers are held out."""
    if not 0 <= share < 1:
        raise ValueError(f"held-out publisher share {share!r} must be in [0, 1)")
    if not publisher or publisher in NLP100_PUBLISHERS:
        return False
    return publisher_unit(publisher) < share
