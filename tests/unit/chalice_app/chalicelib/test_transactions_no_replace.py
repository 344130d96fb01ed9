"""A stored transaction is never replaced by a write of the API's, on moto's server: a new record is written only
where no item has its id yet (one PutItem, or a batch's TransactWriteItems), the replay of unsaved records is a
no-op for the ids already there, and the feedback write changes the feedback attributes and asks for nothing back.
What IAM adds to these conditions, and what it cannot, is in docs/architecture.md."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from chalicelib import transactions
from chalicelib.callers import Caller
from chalicelib.transactions import Outcome, TransactionRecord

SCORES = {"Business": 0.7, "Science": 0.3}


def _record(request_id: str, headline: str, label: str = "Business") -> TransactionRecord:
    outcome = Outcome(request_id, headline, 4.0, label, SCORES, "news-test")
    return transactions.build_record(outcome, dt.datetime.now(dt.UTC), "news-classifier", None, "k-alice")


def _with_feedback(request_id: str) -> dict[str, Any]:
    """The record as stored after alice's feedback, in DynamoDB's own format."""
    assert transactions.save([_record(request_id, "Fed raises rates")])
    transactions.record_feedback(Caller("k-alice", operator=False), request_id, "Science")
    return _stored(request_id)


def _stored(request_id: str) -> dict[str, Any]:
    table = transactions.transaction_model().Meta.table_name
    return boto3.client("dynamodb").get_item(TableName=table, Key={"request_id": {"S": request_id}},
                                             ConsistentRead=True)["Item"]


@pytest.mark.parametrize("batch", [False, True], ids=["PutItem", "TransactWriteItems"])
def test_a_write_with_an_existing_id_replaces_nothing(transaction_table: str, batch: bool) -> None:
    taken = transactions.new_request_id()
    before = _with_feedback(taken)
    assert before["feedback_label"] == {"S": "Science"}
    others = [_record(transactions.new_request_id(), "Oil falls")] if batch else []
    assert not transactions.save([_record(taken, "A different headline", "Science"), *others])
    assert _stored(taken) == before  # headline, answer and feedback as they were
    if others:  # all or none: the batch's other record was not written either
        assert transactions.transaction_model().count(others[0].request_id) == 0


def test_replaying_an_unsaved_record_whose_id_exists_keeps_the_stored_one(transaction_table: str) -> None:
    taken = transactions.new_request_id()
    before = _with_feedback(taken)
    fresh = _record(transactions.new_request_id(), "Ebola outbreak spreads")
    report = transactions.replay([_record(taken, "Replayed headline").to_simple_dict(), fresh.to_simple_dict()])
    assert (report.written, report.already_present) == (1, 1)
    assert _stored(taken) == before
    assert transactions.find(fresh.request_id).headline == "Ebola outbreak spreads"


def test_feedback_changes_only_the_feedback_attributes_and_reads_nothing_back(
        transaction_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = transactions.new_request_id()
    assert transactions.save([_record(request_id, "Fed raises rates")])
    before = _stored(request_id)
    updates: list[dict[str, Any]] = []
    client = transactions.transaction_model()._get_connection().connection.client
    client.meta.events.register("provide-client-params.dynamodb.UpdateItem",
                                lambda params, **_: updates.append(dict(params)))
    answered = transactions.record_feedback(Caller("k-alice", operator=False), request_id, "Science")
    [update] = updates
    assert update["ReturnValues"] == "NONE"
    after = _stored(request_id)
    assert {name for name in after if after[name] != before.get(name)} == {"feedback_label", "feedback_at",
                                                                          "feedback_by", "feedback_source"}
    assert answered.to_simple_dict() == transactions.find(request_id).to_simple_dict()  # the answer is the record
