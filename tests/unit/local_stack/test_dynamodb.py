"""The local stack's moto: TransactWriteItems without whole-table copies, still all or nothing; index queries in
moto's order without its slow comparisons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from local_stack.dynamodb import faster_sorts, faster_transactions

TABLE = "transactions"


@pytest.fixture
def dynamodb(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """In-process moto with the patch, and a table that refuses to be deep-copied: a copy would fail the test."""
    def no_table_copies(self: Table, memo: dict) -> Table:
        raise AssertionError("moto deep-copied a whole table")

    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with mock_aws(), faster_transactions():
        client = boto3.client("dynamodb")
        client.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        for n in range(50):
            client.put_item(TableName=TABLE, Item={"request_id": {"S": f"old-{n}"}, "headline": {"S": "x"}})
        monkeypatch.setattr(Table, "__deepcopy__", no_table_copies, raising=False)
        yield client


def _put(request_id: str, headline: str = "new") -> dict[str, Any]:
    return {"Put": {"TableName": TABLE, "Item": {"request_id": {"S": request_id}, "headline": {"S": headline}},
                    "ConditionExpression": "attribute_not_exists(request_id)"}}


def _headline(client: Any, request_id: str) -> str | None:
    item = client.get_item(TableName=TABLE, Key={"request_id": {"S": request_id}}, ConsistentRead=True).get("Item")
    return item["headline"]["S"] if item else None


def test_a_transaction_writes_all_its_items(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[_put("a"), _put("b"), _put("c")])
    assert [_headline(dynamodb, i) for i in "abc"] == ["new", "new", "new"]


def test_a_cancelled_transaction_leaves_no_item_behind(dynamodb: Any) -> None:
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[_put("a"), _put("old-7", "overwritten"), _put("b")])
    assert [_headline(dynamodb, i) for i in ("a", "old-7", "b")] == [None, "x", None]


def test_a_cancelled_update_is_undone_too(dynamodb: Any) -> None:
    update = {"Update": {"TableName": TABLE, "Key": {"request_id": {"S": "old-1"}},
                         "UpdateExpression": "SET headline = :h",
                         "ExpressionAttributeValues": {":h": {"S": "changed"}}}}
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[update, _put("old-2")])
    assert _headline(dynamodb, "old-1") == "x"


def _index_query(client: Any, forward: bool = True, page_size: int = 100) -> list[str]:
    pages = client.get_paginator("query").paginate(
        TableName="indexed", IndexName="by-day", KeyConditionExpression="#d = :d",
        ExpressionAttributeNames={"#d": "day"}, ExpressionAttributeValues={":d": {"S": "monday"}},
        ScanIndexForward=forward, PaginationConfig={"PageSize": page_size})
    return [item["id"]["S"] for page in pages for item in page["Items"]]


def test_index_queries_keep_motos_order_without_comparing_moto_values(aws_credentials: None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Numbers in numeric order, ties on the index's range key by the table's key, both ways and across pages: as
    moto's own sort, which compares DynamoType objects; the faster one compares plain values only (a later page's
    search for its start key still compares moto's objects, once per item)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="indexed", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": kind}
                                  for name, kind in (("id", "S"), ("day", "S"), ("n", "N"))],
            GlobalSecondaryIndexes=[{"IndexName": "by-day", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"},
                                                   {"AttributeName": "n", "KeyType": "RANGE"}]}])
        for name, day, n in [("a", "monday", "10"), ("b", "monday", "9"), ("c", "tuesday", "1"), ("d", "monday", "9"),
                             ("e", "monday", "-2.5"), ("f", "monday", "100"), ("g", "monday", "9")]:
            client.put_item(TableName="indexed", Item={"id": {"S": name}, "day": {"S": day}, "n": {"N": n}})
        motos = [_index_query(client), _index_query(client, forward=False)]
        with faster_sorts():
            assert [_index_query(client, page_size=2), _index_query(client, False, page_size=4)] == motos
            monkeypatch.setattr(DynamoType, "__lt__", _no_comparison)
            assert [_index_query(client), _index_query(client, forward=False)] == motos
    assert motos[0] == ["e", "b", "d", "g", "a", "f"]


def _no_comparison(self: DynamoType, other: DynamoType) -> bool:
    raise AssertionError("a DynamoType comparison: the sort converts both values again on every call")
