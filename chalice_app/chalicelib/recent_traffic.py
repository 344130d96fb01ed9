"""The console's recent-traffic view: the last N transactions and the labels the model gave them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from . import transactions
from .callers import Caller


def recent(limit: int, caller: Caller) -> dict[str, Any]:
    """What GET /transactions answers: the newest records (everyone's for an operator, else the caller's own)
    and, per label, how many of them got it."""
    if caller.operator:
        records = transactions.latest(limit, dt.datetime.now(dt.UTC))
    else:
        records = transactions.latest_of(caller.require_identity(), limit)
    counts = Counter(record.label for record in records if record.label is not None)
    return {"transactions": [record.to_simple_dict() for record in records],
            "label_counts": dict(counts.most_common())}
