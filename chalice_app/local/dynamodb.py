"""moto's DynamoDB server for the local stack: its table kept on disk, TransactWriteItems costing what DynamoDB's costs.

`keep_tables()` replays moto's own recording (MOTO_RECORDER_FILEPATH) before the port opens, so the table survives
restarts; `faster_transactions()` backs up only the items a transaction writes, because moto's whole-table copy
slows down and fails under load (docs/local-stack.md). Not part of the Lambda package.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.moto_api import recorder
from moto.server import ThreadedMotoServer
from moto.server import main as moto_server

from chalice_app.local.state import RECORDING_VARIABLE

READ_ONLY = {f"DynamoDB_20120810.{name}" for name in (
    "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource", "DescribeEndpoints", "DescribeLimits")}
log = logging.getLogger("local_dynamodb")
_one_at_a_time = threading.Lock()
_moto_transact_write_items = DynamoDBBackend.transact_write_items
Backup = list[tuple[Table, DynamoType, DynamoType | None, Item | None]]


class _CopyAllButTables:
    """Stands in for the `copy` module inside moto.dynamodb.models: tables are not copied, everything else is."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _backup(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> Backup:
    """A copy of each item the transaction names (None where there is none yet)."""
    backup: Backup = []
    for operation in (op for item in transact_items for op in item.values()):
        try:
            table = backend.get_table(operation["TableName"])
            key = operation["Item"] if "Item" in operation else operation["Key"]
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        except (KeyError, TypeError, AttributeError, ResourceNotFoundException):
            continue  # a malformed operation: moto refuses it before it writes anything
        backup.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return backup


def _restore(backup: Backup) -> None:
    for table, hash_key, range_key, item in reversed(backup):
        if item is None:
            table.delete_item(hash_key, range_key)
        else:
            table.put_item(item.to_json()["Attributes"], overwrite=True)


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    with _one_at_a_time:
        backup = _backup(self, transact_items)
        try:
            _moto_transact_write_items(self, transact_items)
        except Exception:
            _restore(backup)
            raise


@contextmanager
def faster_transactions() -> Iterator[None]:
    """While inside: moto's TransactWriteItems backs up the items it touches instead of whole tables."""
    with mock.patch.object(dynamodb_models, "copy", _CopyAllButTables), \
            mock.patch.object(DynamoDBBackend, "transact_write_items", _transact_write_items):
        yield


def changes_state(line: str) -> bool:
    """A recorded request worth replaying: a DynamoDB call that may write (a partial line is not)."""
    try:
        entry = json.loads(line)
        headers = {name.lower(): value for name, value in entry["headers"].items()}
    except (ValueError, KeyError, AttributeError, TypeError):
        return False
    target = headers.get("x-amz-target", "")
    return entry.get("method") == "POST" and target.startswith("DynamoDB_") and target not in READ_ONLY


def compact(recording: Path) -> int:
    """Rewrite the recording with the requests that change state only (atomically); how many there are."""
    if not recording.is_file():
        return 0
    kept = [line for line in recording.read_text().splitlines() if changes_state(line)]
    scratch = recording.with_name(recording.name + ".compacting")
    scratch.write_text("".join(f"{line}\n" for line in kept))
    os.replace(scratch, recording)
    return len(kept)


def replay(recording: Path, target: str) -> None:
    """moto's `replay_recording`, on one kept-alive connection (moto's opens one per request: 10x slower)."""
    import base64

    import requests

    with requests.Session() as session:
        for line in recording.read_text().splitlines():
            entry = json.loads(line)
            body = base64.b64decode(entry["body"]) if entry.get("body_encoded") else entry.get("body", "")
            headers = {k: v for k, v in entry["headers"].items() if k.lower() not in ("transfer-encoding", "host")}
            path = entry["url"].split("://", 1)[-1].partition("/")[2]
            session.request(entry["method"], f"{target}/{path}", headers=headers, data=body)


def keep_tables() -> int:
    """With MOTO_RECORDER_FILEPATH set: replay the earlier runs' writes into this process's moto, then record
    every request from now on. Returns the number of requests replayed (0 without a recording)."""
    location = os.environ.get(RECORDING_VARIABLE)
    if not location:
        return 0
    replayed = compact(Path(location))
    if replayed:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            replay(Path(location), f"http://{host}:{port}")
        finally:
            server.stop()
    recorder.start_recording()
    log.warning("tables kept in %s: %d write request(s) replayed", location, replayed)
    return replayed


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # werkzeug's access log; its errors still show
    with faster_transactions():
        keep_tables()
        moto_server(list(argv if argv is not None else sys.argv[1:]) or ["-H", "127.0.0.1"])


if __name__ == "__main__":
    main()
