"""The review queue: the uncertain answers most worth a person's label, one entry per headline, and one label for
every request that sent it.

An answer flagged uncertain carries the review index's keys (transactions.REVIEW_INDEX: its UTC day, its margin
between the two top scores) until it gets feedback, which removes them. Each day of the window is read in margin
order and the days are merged: one record of each day is read to compare them, then one at a time from the day
that had the smallest, or in one Query once only one day has records left. So a listing reads the records it
returns, those labelled meanwhile that it skips (the index lags the table by a moment), and at most one record
of each other day it did not need (docs/local-stack.md#the-review-queue).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import telemetry, transactions
from .callers import Caller
from .errors import ApiError
from .transactions import REVIEW_FEEDBACK, ReviewKey, TransactionRecord

# A listing stops after reading this many records, so one headline sent thousands of times cannot make it slow:
# its entry then carries the ids read, and the rest come back as the same headline once those are labelled.
MAX_READ = 500
_SPACE = re.compile(r"\s+")


def normalised(headline: str) -> str:
    """The de-duplication key of a headline: lowercased, quotes removed, whitespace collapsed. A copy of
    training_jobs.data.normalise_title, which the Lambda cannot import (test_review_normalisation.py pins them)."""
    return _SPACE.sub(" ", headline.replace('"', "")).strip().lower()


@dataclass
class Entry:
    """One headline of the queue: the first (smallest-margin) record as the model answered it, and every request
    id read that sent the same normalised text."""

    record: TransactionRecord
    request_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        record = self.record
        return {"headline": record.headline, "label": record.label,
                "scores": record.scores.as_dict() if record.scores is not None else {},
                "margin": record.review_margin, "model_version": record.model_version,
                "created_at": TransactionRecord.created_at.serialize(record.created_at),
                "request_ids": self.request_ids}


class _Day:
    """One UTC day of the review index, read lazily in margin order."""

    def __init__(self, day: dt.date) -> None:
        self.day = day
        self.records: deque[TransactionRecord] = deque()
        self.after: ReviewKey | None = None
        self.exhausted = False
        self.read = 0

    def fill(self, count: int) -> bool:
        """Read up to `count` more records unless some are waiting; whether the day has any left."""
        if not self.records and not self.exhausted:
            page, self.after = transactions.review_page(self.day, count, self.after)
            self.records.extend(page)
            self.read += len(page)
            self.exhausted = self.after is None
        return bool(self.records)

    def margin(self) -> float:
        return float(self.records[0].review_margin or 0)


def queue(days: int, limit: int, now: dt.datetime) -> dict[str, Any]:
    """What GET /review answers: up to `limit` entries from the last `days` UTC days (today included), smallest
    margin first, with no record that has feedback."""
    today = transactions.utc_day(now)
    window = [_Day(today - dt.timedelta(days=n)) for n in range(days)]
    open_days = [day for day in window if day.fill(1)]
    entries: dict[str, Entry] = {}
    skipped = 0
    while open_days and len(entries) < limit and sum(day.read for day in window) < MAX_READ:
        day = min(open_days, key=_Day.margin)
        record = day.records.popleft()
        if record.feedback_label is not None:
            skipped += 1
        else:
            entries.setdefault(normalised(record.headline), Entry(record)).request_ids.append(record.request_id)
        wanted = min(limit - len(entries), MAX_READ - sum(d.read for d in window))
        if wanted > 0 and not day.fill(1 if len(open_days) > 1 else wanted):
            open_days.remove(day)
    telemetry.logger.info("review_queue", extra={"entries": len(entries), "records_read": sum(d.read for d in window),
                                                 "skipped_labelled": skipped})
    return {"entries": [entry.to_dict() for entry in entries.values()]}


def label(caller: Caller, label_name: str, request_ids: list[str]) -> dict[str, Any]:
    """What POST /review/labels answers: the label stored as feedback on each transaction (source `review`,
    first-wins as on the feedback route); the ids refused name why, and a table outage fails the whole call,
    which is safe to repeat (the same label from the same key again is accepted as it stands)."""
    labelled: list[str] = []
    refused: list[dict[str, str]] = []
    for request_id in request_ids:
        try:
            transactions.record_feedback(caller, request_id, label_name, REVIEW_FEEDBACK)
        except ApiError as error:
            if error.status >= 500:
                raise
            refused.append({"request_id": request_id, "code": error.code, "message": error.message})
        else:
            labelled.append(request_id)
    return {"label": label_name, "labelled": labelled, "refused": refused}
