"""The review index on the local stack's table (chalice_app/local/dynamodb.py, moto kept on disk): a listing of the
review queue reads the records it returns, the labelled ones it skips and at most one record of each other day
(counted from each Query's ScannedCount); a table kept from before the index existed gets it, and keeps it across a
restart."""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalicelib import review, transactions
from chalicelib.transactions import REVIEW_INDEX, Outcome
from pynamodb.connection.base import Connection

from chalice_app.local.state import DYNAMODB_DATABASE, FAKE_AWS
from model.tools.local_servers import unused_port
from tests.support.local_table import LocalDynamoDB

TABLE = "news-transactions-review"
NOW = dt.datetime(2026, 5, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def local_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalDynamoDB]:
    """The local stack's DynamoDB stand-in, running, with the API's code pointed at it (no table yet)."""
    server = LocalDynamoDB(tmp_path / DYNAMODB_DATABASE)
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.url)
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop(signal.SIGKILL)


@dataclass
class ReviewReads:
    """Each Query of the review index: the Limit asked and the items DynamoDB read (ScannedCount)."""

    queries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def items_read(self) -> int:
        return sum(query["ScannedCount"] for query in self.queries)


@pytest.fixture
def review_reads(monkeypatch: pytest.MonkeyPatch) -> ReviewReads:
    reads = ReviewReads()
    dispatch = Connection.dispatch

    def counting(self: Connection, operation_name: str, operation_kwargs: dict[str, Any]) -> dict[str, Any]:
        review_query = operation_name == "Query" and operation_kwargs.get("IndexName") == REVIEW_INDEX
        if review_query:
            operation_kwargs["ReturnConsumedCapacity"] = "TOTAL"
        data = dispatch(self, operation_name, operation_kwargs)
        if review_query:
            reads.queries.append({"Limit": operation_kwargs.get("Limit"), "ScannedCount": data["ScannedCount"],
                                  "ConsumedCapacity": data.get("ConsumedCapacity", {}).get("CapacityUnits")})
        return data

    monkeypatch.setattr(Connection, "dispatch", counting)
    return reads


def store_uncertain(headline: str, margin: float, created_at: dt.datetime, labelled: bool = False) -> str:
    """One uncertain record as the API stores it; `labelled`: feedback that the index has not caught up with yet
    (DynamoDB updates an index a moment after the table)."""
    scores = {"Science": 0.5, "Health": 0.5 - margin, "Business": margin}
    outcome = Outcome(transactions.new_request_id(), headline, 5.0, "Science", scores, "v1", uncertain=True)
    record = transactions.build_record(outcome, created_at, "news-classifier", None)
    if labelled:
        record.feedback_label = "Science"
    assert transactions.save([record])
    return outcome.request_id


@pytest.mark.slow
def test_a_listing_reads_what_it_returns_and_skips_plus_one_record_per_other_day(
        local_table: LocalDynamoDB, review_reads: ReviewReads) -> None:
    assert transactions.create_table()
    days = [NOW - dt.timedelta(days=n) for n in range(3)]
    for n in range(12):  # three days of four headlines each, margins interleaved across the days
        store_uncertain(f"headline {n}", 0.01 * (n + 1), days[n % 3])
    store_uncertain("labelled meanwhile", 0.005, days[0], labelled=True)
    store_uncertain("headline 0 ", 0.011, days[1])  # the same headline as "headline 0" once normalised
    store_uncertain("outside the window", 0.001, NOW - dt.timedelta(days=5))
    review_reads.queries.clear()

    answer = review.queue(3, 5, NOW)
    returned = [i for entry in answer["entries"] for i in entry["request_ids"]]
    assert [e["headline"] for e in answer["entries"]] == [f"headline {n}" for n in range(5)]
    assert len(returned) == 6
    assert review_reads.items_read == len(returned) + 1 + 2  # + the labelled one skipped + two other days' heads
    print(f"\nreview queue, 3 days, limit 5: {len(review_reads.queries)} Queries read {review_reads.items_read} "
          f"items for {len(returned)} ids returned and 1 skipped; Limits {[q['Limit'] for q in review_reads.queries]}; "
          f"moto's ConsumedCapacity {[q['ConsumedCapacity'] for q in review_reads.queries]}")

    review_reads.queries.clear()
    today = review.queue(1, 3, NOW)  # one day: its first record, then the rest in one Query
    assert len([i for e in today["entries"] for i in e["request_ids"]]) == 3
    assert (len(review_reads.queries), review_reads.items_read) == (2, 4)  # 3 returned + the labelled one skipped
    print(f"review queue, 1 day, limit 3: {len(review_reads.queries)} Queries read {review_reads.items_read} items")


@pytest.mark.slow
def test_a_table_kept_from_before_the_index_gets_it_and_keeps_it(local_table: LocalDynamoDB,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    schema = transactions.TransactionRecord._get_schema()
    older = [index for index in schema["global_secondary_indexes"] if index["index_name"] != REVIEW_INDEX]
    boto3.client("dynamodb", endpoint_url=local_table.url).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST", KeySchema=schema["key_schema"],
        AttributeDefinitions=[d for d in schema["attribute_definitions"] if d["AttributeName"] != "review_day"
                              and d["AttributeName"] != "review_margin"],
        GlobalSecondaryIndexes=[{"IndexName": i["index_name"], "Projection": i["projection"],
                                 "KeySchema": sorted(i["key_schema"], key=lambda k: k["KeyType"])} for i in older])
    waiting = store_uncertain("Gene study surprises", 0.05, NOW)

    assert not transactions.create_table()  # it exists: only the missing index is added
    assert transactions.add_missing_indexes() == []
    local_table.stop(signal.SIGTERM)
    local_table.port = unused_port()
    local_table.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", local_table.url)
    assert [e["request_ids"] for e in review.queue(1, 5, NOW)["entries"]] == [[waiting]]
