"""No lost transactions: every headline a load run sent has exactly one record in the transaction table.

    python -m loadtest.reconcile --ledger artifacts/loadtest/ledger.json --api http://127.0.0.1:8000

Day-index Queries filtered on the run id, then a consistent read for ids the eventually consistent index does not
show yet. Exit code 1 unless the run reconciles (docs/load-testing.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from devkit.day_index import days_between, query_days
from loadtest.ledger import Ledger

CLOCK_MARGIN = dt.timedelta(minutes=5)  # the API's clock may differ from the load generator's
BATCH_GET_LIMIT = 100  # keys per BatchGetItem call
SHOWN_IDS = 10


@dataclass(frozen=True)
class Reconciliation:
    """The ledger of a run against the records of its run id."""

    run_id: str
    sent: int  # headlines sent for classification
    rejected: int  # headlines of 4xx answers without an id of their own: no record of their own expected
    unnamed: int  # headlines answered without their ids: a record expected
    unanswered: int  # headlines without an HTTP answer: a record possible
    recorded: int  # records of the run id in the table
    missing_ids: tuple[str, ...]  # named by an answer, absent from the table
    duplicate_ids: tuple[str, ...]  # named by more than one answer
    unexpected_ids: tuple[str, ...]  # in the table, named by no answer

    @property
    def missing(self) -> int:
        """Headlines without a record: named ids absent, and unnamed headlines outnumbering the unnamed records."""
        return len(self.missing_ids) + max(0, self.unnamed - len(self.unexpected_ids))

    @property
    def unexplained(self) -> int:
        """Records no request explains: more records named by no answer than unnamed and unanswered headlines."""
        return max(0, len(self.unexpected_ids) - self.unnamed - self.unanswered)

    @property
    def ok(self) -> bool:
        """Exactly one record per headline the API got, and none for a headline it did not."""
        return self.missing == 0 and not self.duplicate_ids and self.unexplained == 0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "sent": self.sent, "recorded": self.recorded, "missing": self.missing,
                "duplicate": len(self.duplicate_ids), "unexpected": len(self.unexpected_ids),
                "unexplained": self.unexplained, "rejected": self.rejected, "unnamed": self.unnamed,
                "unanswered": self.unanswered,
                "ok": self.ok, "missing_ids": list(self.missing_ids), "duplicate_ids": list(self.duplicate_ids),
                "unexpected_ids": list(self.unexpected_ids)}

    def summary(self) -> str:
        line = (f"run {self.run_id}: sent {self.sent} / recorded {self.recorded} / missing {self.missing} / "
                f"duplicate {len(self.duplicate_ids)} / unexpected {len(self.unexpected_ids)}")
        if self.rejected or self.unnamed or self.unanswered:
            line += f" (rejected {self.rejected}, answered without ids {self.unnamed}, no answer {self.unanswered})"
        return f"{line}: {'OK' if self.ok else 'FAILED'}"


def reconcile(ledger: Ledger, recorded_ids: Iterable[str]) -> Reconciliation:
    """Compare the ids the answers named with the ids recorded for the run."""
    named = Counter(ledger.request_ids)
    recorded = set(recorded_ids)
    return Reconciliation(
        run_id=ledger.run_id, sent=ledger.sent, rejected=ledger.rejected, unnamed=ledger.unnamed,
        unanswered=ledger.unanswered,
        recorded=len(recorded),
        missing_ids=tuple(sorted(set(named) - recorded)),
        duplicate_ids=tuple(sorted(i for i, n in named.items() if n > 1)),
        unexpected_ids=tuple(sorted(recorded - set(named))),
    )


def query_run_ids(client: Any, table: str, run_id: str, start: dt.datetime, end: dt.datetime) -> Iterator[str]:
    """Ids of the run's records created between start and end, one paginated index Query per UTC day."""
    items = query_days(client, table, days_between(start, end), "#run = :run", created=(start, end),
                       names={"#run": "run_id"}, values={":run": {"S": run_id}}, projection="request_id")
    yield from (item["request_id"]["S"] for item in items)


def consistent_run_ids(client: Any, table: str, run_id: str, ids: Iterable[str]) -> Iterator[str]:
    """Those of `ids` that the table itself holds for the run (strongly consistent reads)."""
    pending = sorted(set(ids))
    for offset in range(0, len(pending), BATCH_GET_LIMIT):
        request: dict[str, Any] = {table: {
            "Keys": [{"request_id": {"S": i}} for i in pending[offset:offset + BATCH_GET_LIMIT]],
            "ConsistentRead": True, "ProjectionExpression": "request_id, run_id"}}
        while request:
            answer = client.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(table, []):
                if item.get("run_id", {}).get("S") == run_id:
                    yield item["request_id"]["S"]
            request = answer.get("UnprocessedKeys") or {}
            if request:
                time.sleep(0.1)  # DynamoDB throttled part of the batch: ask again for the rest


def recorded_ids(ledger: Ledger, table: str, client: Any) -> set[str]:
    """Every id the table holds for the run: the index window, then the table for ids the index lacks."""
    start, end = ledger.window()
    found = set(query_run_ids(client, table, ledger.run_id, start - CLOCK_MARGIN, end + CLOCK_MARGIN))
    found.update(consistent_run_ids(client, table, ledger.run_id, set(ledger.request_ids) - found))
    return found


def reconcile_table(ledger: Ledger, table: str, client: Any | None = None) -> Reconciliation:
    """Reconcile the ledger with the table `table` (boto3's DynamoDB client from the environment by default)."""
    client = client or boto3.client("dynamodb")
    return reconcile(ledger, recorded_ids(ledger, table, client))


def table_of_api(api_url: str, api_key: str | None = None) -> str:
    """The table an API writes to, as its GET /health/details reports it to an operator key."""
    headers = {"x-api-key": api_key} if api_key else {}
    request = urllib.request.Request(f"{api_url.rstrip('/')}/health/details", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        table = json.loads(response.read())["table"]["name"]
    if not table:
        raise ValueError(f"{api_url}/health/details names no table (TABLE_NAME is not set for the API)")
    return str(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True, help="the ledger.json a load run wrote")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--table", help="the transaction table's name")
    target.add_argument("--api", help="the API's base URL: the table is the one its GET /health/details names")
    parser.add_argument("--output", type=Path, help="also write the reconciliation as JSON here")
    args = parser.parse_args(argv)

    ledger = Ledger.load(args.ledger)
    result = reconcile_table(ledger, args.table or table_of_api(args.api))
    print(result.summary())
    for name in ("missing_ids", "duplicate_ids", "unexpected_ids"):
        ids = getattr(result, name)
        if ids:
            print(f"  {name}: {', '.join(ids[:SHOWN_IDS])}{' ...' if len(ids) > SHOWN_IDS else ''}")
    if args.output:
        args.output.write_text(json.dumps(result.as_dict(), indent=1) + "\n")
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
