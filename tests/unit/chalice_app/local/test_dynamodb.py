"""The local stack's moto: TransactWriteItems without whole-table copies, still all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from chalice_app.local.dynamodb import faster_transactions

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
