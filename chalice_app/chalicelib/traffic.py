"""The console's recent-traffic view: the last N transactions and the labels the model gave them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from chalicelib import transactions


def recent(limit: int) -> dict[str, Any]:
    """What GET /transactions answers: the newest records and, per label, how many of them got it."""
    records = transactions.latest(limit, dt.datetime.now(dt.UTC))
    counts = Counter(record.label for record in records if record.label is not None)
    return {"transactions": [record.to_simple_dict() for record in records],
            "label_counts": dict(counts.most_common())}
