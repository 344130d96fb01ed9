"""Reconciliation of a load run: the ledger against the records, and the run's records read back from a real table.

The table is the API's own (chalicelib.transactions on moto's server), written the ways the API writes it: one
record, a batch in one transaction, and a `transaction_unsaved` record replayed later.
"""

from __future__ import annotations

import datetime as dt
import uuid

import boto3
import pytest
from chalicelib import transactions

from loadtest.ledger import Ledger
from loadtest.reconcile import reconcile, reconcile_table

RUN = "loadtest-test-run"


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_a_complete_run_reconciles() -> None:
    ledger = Ledger(RUN)
    ids = _ids(5)
    ledger.record(5, 200, ids)
    result = reconcile(ledger, ids)
    assert result.ok
    assert (result.sent, result.recorded, result.missing, result.unexplained) == (5, 5, 0, 0)


def test_an_id_without_record_is_missing() -> None:
    ledger = Ledger(RUN)
    ids = _ids(3)
    ledger.record(3, 200, ids)
    result = reconcile(ledger, ids[:2])
    assert not result.ok
    assert (result.missing, result.missing_ids) == (1, (ids[2],))


@pytest.mark.parametrize("status", [500, 0])
def test_headlines_answered_without_ids_are_matched_by_records_no_answer_named(status: int) -> None:
    ledger = Ledger(RUN)
    named, unnamed = _ids(2), _ids(1)
    ledger.record(2, 200, named)
    ledger.record(1, status, [])  # the API stored the record, but the client never learnt its id
    result = reconcile(ledger, named + unnamed)
    assert result.ok
    assert (result.unexpected_ids, result.missing) == (tuple(unnamed), 0)


@pytest.mark.parametrize(("status", "missing"), [
    (500, 1),  # the API answered, so it got the request: its record must exist
    (0, 0),  # no answer (connection refused, or Locust stopped the user before it sent it): it may have left none
], ids=["answered-without-its-id-is-missing", "unanswered-may-have-left-no-record"])
def test_a_headline_without_its_id_counts_as_missing_only_when_the_api_answered(status: int, missing: int) -> None:
    ledger = Ledger(RUN)
    named = _ids(2)
    ledger.record(2, 200, named)
    ledger.record(1, status, [])
    result = reconcile(ledger, named)
    assert (result.missing, result.ok) == (missing, missing == 0)


def test_records_no_request_explains_fail_the_run() -> None:
    ledger = Ledger(RUN)
    named = _ids(1)
    ledger.record(1, 200, named)
    ledger.record(1, 403, [])  # the gateway refused it without an id: it must not have left a record
    result = reconcile(ledger, named + _ids(1))
    assert (result.unexplained, result.ok) == (1, False)


def test_an_id_named_twice_is_a_duplicate() -> None:
    ledger = Ledger(RUN)
    [same] = _ids(1)
    ledger.record(1, 200, [same])
    ledger.record(1, 200, [same])
    result = reconcile(ledger, [same])
    assert (result.duplicate_ids, result.ok) == ((same,), False)


def _store(headlines: list[str], run_id: str | None, created_at: dt.datetime) -> list[str]:
    """Records as the API builds them; a list of more than one is saved as one transaction, like a batch."""
    outcomes = [transactions.Outcome(transactions.new_request_id(), h, 3.0, "b", {"b": 1.0}) for h in headlines]
    assert transactions.save([transactions.build_record(o, created_at, "news-classifier", run_id) for o in outcomes])
    return [o.request_id for o in outcomes]


def test_the_runs_records_are_read_back_from_the_day_index(transaction_table: str) -> None:
    ledger = Ledger(RUN)
    now = dt.datetime.now(dt.UTC)
    single = _store(["One"], RUN, now)
    batch = _store(["Two", "Three", "Four"], RUN, now)
    unsaved = transactions.build_record(transactions.Outcome(transactions.new_request_id(), "Five", 3.0,
                                                             error_code="model_error"), now, "news-classifier", RUN)
    transactions.replay([unsaved.to_simple_dict()])  # logged as transaction_unsaved, written back later
    _store(["Other run"], "another-run", now)
    _store(["No run"], None, now)
    for ids in (single, batch, [unsaved.request_id]):
        ledger.record(len(ids), 200, ids)
    ledger.finish()

    result = reconcile_table(ledger, transaction_table, boto3.client("dynamodb"))
    assert result.ok, result.summary()
    assert (result.sent, result.recorded, result.missing) == (5, 5, 0)


def test_a_record_outside_the_index_window_is_still_found_in_the_table(transaction_table: str) -> None:
    """A record whose created_at lies outside the run (e.g. a clock far off) is confirmed by a consistent read."""
    ledger = Ledger(RUN)
    early = _store(["Written long before the run"], RUN, dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    ledger.record(1, 200, early)
    ledger.finish()
    assert reconcile_table(ledger, transaction_table, boto3.client("dynamodb")).ok


def test_a_headline_the_table_lacks_is_reported_missing(transaction_table: str) -> None:
    ledger = Ledger(RUN)
    stored = _store(["Stored"], RUN, dt.datetime.now(dt.UTC))
    lost = transactions.new_request_id()
    ledger.record(1, 200, stored)
    ledger.record(1, 200, [lost])
    ledger.finish()
    result = reconcile_table(ledger, transaction_table, boto3.client("dynamodb"))
    assert (result.missing_ids, result.ok) == ((lost,), False)
