"""The day index has two readers: the API's, `chalicelib.transactions.query_days` (PynamoDB, in the Lambda zip), and
the tools', devkit/day_index.py (plain boto3), through which training_jobs/feedback_export.py and loadtest/reconcile.py
read it. The tools' is pinned to the API's here: the same index and keys, the same partitions of a window, the same
records."""

from __future__ import annotations

import datetime as dt

import boto3
from chalicelib import transactions
from chalicelib.callers import Caller
from chalicelib.transactions import DAY_INDEX, DayIndex, TransactionRecord

from devkit import day_index
from loadtest import reconcile
from training_jobs import feedback_export as feedback

RUN = "day-index-contract"
REVIEWER = Caller("k-reviewer", operator=True)


def test_the_tools_reader_names_the_index_and_its_keys_as_the_table_does() -> None:
    assert day_index.DAY_INDEX == DAY_INDEX == DayIndex.Meta.index_name
    assert (DayIndex.day.attr_name, DayIndex.created_at.attr_name) == ("day", "created_at")  # the tools' `#day`...
    moment = dt.datetime(2026, 3, 1, 23, 59, 30, 123456, tzinfo=dt.UTC)
    assert TransactionRecord.created_at.serialize(moment) == day_index.created_at(moment)


def test_the_tools_reader_partitions_a_window_as_the_table_does() -> None:
    start, end = dt.datetime(2026, 2, 27, 23, 59, tzinfo=dt.UTC), dt.datetime(2026, 3, 1, 0, 1, tzinfo=dt.UTC)
    days = [day.isoformat() for day in transactions.days_between(start, end)]
    assert day_index.days_between(start, end) == days
    assert feedback.window_days(len(days), end.date()) == days[::-1]
    record = transactions.build_record(transactions.Outcome("id", "A headline", 1.0), end, None, None)
    assert record.day == days[-1]


def _stored(created_at: dt.datetime, run_id: str | None, feedback_label: str | None) -> str:
    outcome = transactions.Outcome(transactions.new_request_id(), f"Headline at {created_at}", 3.0, "Business",
                                   {"Business": 0.8, "Science": 0.2})
    assert transactions.save([transactions.build_record(outcome, created_at, "news-classifier", run_id)])
    if feedback_label:
        transactions.record_feedback(REVIEWER, outcome.request_id, feedback_label)
    return outcome.request_id


def test_the_tools_read_the_records_the_table_reader_reads(transaction_table: str) -> None:
    now = dt.datetime.now(dt.UTC)
    for age in (dt.timedelta(minutes=5), dt.timedelta(hours=3), dt.timedelta(days=1, hours=2),
                dt.timedelta(days=2), dt.timedelta(days=10)):
        _stored(now - age, RUN, "Science")
        _stored(now - age, "another-run", None)
    client = boto3.client("dynamodb")

    window = transactions.days_between(now - dt.timedelta(days=2), now)
    labelled = {r.request_id for r in transactions.query_days(window) if r.feedback_label}
    exported = feedback.query_feedback(client, transaction_table, feedback.window_days(len(window), now.date()))
    assert {item.request_id for item in exported} == labelled
    assert 3 <= len(labelled) < 5  # the window left the oldest out

    start, end = now - dt.timedelta(days=1, hours=1), now - dt.timedelta(minutes=1)
    of_run = {r.request_id for r in transactions.between(start, end) if r.run_id == RUN}
    assert set(reconcile.query_run_ids(client, transaction_table, RUN, start, end)) == of_run
    assert len(of_run) == 2  # created_at bounds the window: 5 min and 3 h ago in, 1 day 2 h ago out
