"""The transaction table's day index, read with plain boto3: the one reader of the tools on the developer's machine
(training_jobs/feedback_export.py exports labels through it, loadtest/reconcile.py counts a load run's records).

The API reads the same index through PynamoDB (chalicelib.transactions.query_days), a second reader the Lambda zip
forces (it holds chalice_app/ alone); tests/unit/chalice_app/chalicelib/test_transactions_day_index.py pins this one
to it: the same index, keys and partitions, the same records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

DAY_INDEX = "day-created_at-index"
CREATED_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+0000"  # how PynamoDB's UTCDateTimeAttribute stores `created_at`


def days_between(start: dt.datetime, end: dt.datetime) -> list[str]:
    """The UTC days (`YYYY-MM-DD`, the index's partition key) from start to end, both included."""
    first, last = start.astimezone(dt.UTC).date(), end.astimezone(dt.UTC).date()
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def created_at(moment: dt.datetime) -> str:
    """`moment` as the index's sort key stores it."""
    return moment.astimezone(dt.UTC).strftime(CREATED_AT_FORMAT)


def query_days(client: Any, table: str, days: Iterable[str], filter_expression: str, *,
               created: tuple[dt.datetime, dt.datetime] | None = None, names: Mapping[str, str] | None = None,
               values: Mapping[str, Any] | None = None, projection: str | None = None) -> Iterator[dict[str, Any]]:
    """The items (DynamoDB JSON) that pass `filter_expression`, one paginated Query per day, in index order;
    `created` narrows each day to the records created from its start to its end (both included)."""
    key, attribute_names, bounds = "#day = :day", {"#day": "day", **(names or {})}, {}
    if created is not None:
        key += " AND #created BETWEEN :from AND :to"
        attribute_names["#created"] = "created_at"
        bounds = {":from": {"S": created_at(created[0])}, ":to": {"S": created_at(created[1])}}
    extra = {"ProjectionExpression": projection} if projection else {}
    paginator = client.get_paginator("query")
    for day in days:
        pages = paginator.paginate(TableName=table, IndexName=DAY_INDEX, KeyConditionExpression=key,
                                   FilterExpression=filter_expression, ExpressionAttributeNames=attribute_names,
                                   ExpressionAttributeValues={**(values or {}), **bounds, ":day": {"S": day}}, **extra)
        for page in pages:
            yield from page["Items"]
