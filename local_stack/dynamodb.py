"""moto's DynamoDB server for the local stack: tables kept on disk, TransactWriteItems costing what DynamoDB's costs.

`kept_tables()` loads the tables from their database (`table_store`) before the port opens and writes each change
back before moto answers it, so the table survives restarts and starts in time proportional to its records, not to
its history; `faster_transactions()` backs up only the items a transaction writes, because moto's whole-table copy
slows down and fails under load, and `faster_sorts()` sorts items on plain values, not moto's objects
(docs/local-stack.md). Not part of the Lambda package.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import main as moto_server
from werkzeug.test import Client

from devkit.local_stack_state import DATABASE_VARIABLE, LEGACY_RECORDING
from local_stack.table_store import StoreError, TableKey, TableStore, all_rows, item_row, load_items

# The calls that change no table: they are neither written to the database nor replayed.
LEAVES_TABLES = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource", "DescribeEndpoints", "DescribeLimits",
    "ListBackups", "DescribeBackup", "DescribeImport", "DescribeExport", "ListExports", "GetResourcePolicy",
    "ExportTableToPointInTime"})
ITEM_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
STATEMENTS = frozenset({"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})  # PartiQL: keys unknown
RESTORES = frozenset({"RestoreTableFromBackup", "RestoreTableToPointInTime", "ImportTable"})  # new tables with items
log = logging.getLogger("local_dynamodb")
_one_at_a_time = threading.Lock()
_writes = threading.Lock()  # one write at a time from moto's change to its commit, so the file follows moto's order
_moto_transact_write_items = DynamoDBBackend.transact_write_items
_moto_call_action = DynamoHandler.call_action
Backup = list[tuple[Table, DynamoType, DynamoType | None, Item | None]]


class _CopyAllButTables:
    """Stands in for the `copy` module inside moto.dynamodb.models: tables are not copied, everything else is."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _written_key(operation: dict[str, Any]) -> dict[str, Any]:
    """The item (or key) one write operation names: its key attributes are the item's key."""
    return operation["Item"] if "Item" in operation else operation["Key"]


def _table_key(table: Table, attributes: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    hash_key = DynamoType(attributes[table.hash_key_attr])
    return hash_key, DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None


def _backup(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> Backup:
    """A copy of each item the transaction names (None where there is none yet)."""
    backup: Backup = []
    for operation in (op for item in transact_items for op in item.values()):
        try:
            table = backend.get_table(operation["TableName"])
            hash_key, range_key = _table_key(table, _written_key(operation))
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


def _sorted_items(self: Table, hash_key_attrs: list[str], range_key_attrs: list[str | None],
                  items: list[Item]) -> list[Item]:
    """moto's order, sorted on each key's plain value (what DynamoType compares) computed once per item."""
    names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in names))
    return items


def _all_items(self: Table) -> list[Item]:
    """moto's list of a table's items in key order, sorted on plain values too."""
    items = [item for members in self.items.values()
             for item in (members.values() if self.range_key_attr else (members,))]
    items.sort(key=lambda item: (item.hash_key.cast_value, item.range_key.cast_value) if item.range_key
               else item.hash_key.cast_value)
    return items


@contextmanager
def faster_sorts() -> Iterator[None]:
    """While inside: moto sorts items (every Query, Scan and index page) on their keys' plain values, computed once
    per item. moto 5.2.5 compares DynamoType objects, converting both values again on each comparison: 2.4 s for one
    page of an index partition of 50,000 records (docs/benchmarks.md#local-stack)."""
    with mock.patch.object(Table, "sorted_items", _sorted_items), mock.patch.object(Table, "all_items", _all_items):
        yield


# --- the tables on disk -------------------------------------------------------------------------------------------

def written_items(action: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table name, key or item) of every item an item write may have changed; [] for a malformed request, which
    moto refused before writing."""
    try:
        if action == "PutItem":
            return [(params["TableName"], params["Item"])]
        if action in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"])]
        if action == "BatchWriteItem":
            return [(name, request["PutRequest"]["Item"] if "PutRequest" in request
                     else request["DeleteRequest"]["Key"])
                    for name, requests in params["RequestItems"].items() for request in requests]
        return [(operation["TableName"], _written_key(operation)) for entry in params["TransactItems"]
                for kind, operation in entry.items() if kind != "ConditionCheck"]
    except (KeyError, TypeError, AttributeError):
        return []


def table_named(params: dict[str, Any]) -> str:
    """The table a table request is about, by name or ARN ("" when it names none)."""
    for name in (params.get("TableName"), params.get("TargetTableName"),
                 (params.get("TableCreationParameters") or {}).get("TableName")):
        if name:
            return str(name).partition(":table/")[2] or str(name)
    arn = str(params.get("ResourceArn") or params.get("BackupArn") or "")
    return arn.partition(":table/")[2].split("/")[0]


def _save_written_items(store: TableStore, backend: DynamoDBBackend, account: str, region: str, action: str,
                        params: dict[str, Any]) -> None:
    """Each item the write named, as moto holds it now (whether or not moto took the write: that is convergent)."""
    rows: dict[str, list] = defaultdict(list)
    for name, attributes in written_items(action, params):
        table = backend.tables.get(name)
        if table is None:
            continue
        try:
            rows[name].append(item_row(table, *_table_key(table, attributes)))
        except (KeyError, TypeError, AttributeError, ValueError):
            continue  # a key moto refused too
    for name, table_rows in rows.items():
        store.save_items(TableKey(account, region, name), table_rows)


def _save_all_items(store: TableStore, backend: DynamoDBBackend, account: str, region: str) -> None:
    """Every table's items again: after a call whose keys are not known (PartiQL, a restore)."""
    for name, table in backend.tables.items():
        store.save_items(TableKey(account, region, name), all_rows(table), replace_all=True)


def _recorded(handler: DynamoHandler) -> dict[str, Any]:
    """The request as moto's recorder writes it, for `replay`."""
    raw = handler.raw_body if isinstance(handler.raw_body, bytes) else str(handler.raw_body or "").encode()
    try:
        body, encoded = raw.decode(), False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(raw).decode(), True
    return {"headers": dict(handler.headers), "method": handler.method, "url": handler.uri, "body": body,
            "body_encoded": encoded}


def persisting_call_action(store: TableStore) -> Callable[[DynamoHandler], Any]:
    """moto's DynamoDB request handler, with each change written to `store` before the answer goes out."""

    def call_action(handler: DynamoHandler) -> Any:
        action = handler._get_action()
        if action in LEAVES_TABLES:
            return _moto_call_action(handler)
        request = _recorded(handler)
        with _writes:
            response = _moto_call_action(handler)
            _save(store, handler, action, handler.body, request, response[0])
        return response

    return call_action


def _save(store: TableStore, handler: DynamoHandler, action: str, params: Any, request: dict[str, Any],
          status: int) -> None:
    backend, account, region = handler.dynamodb_backend, handler.current_account, handler.region
    if not isinstance(params, dict):
        return
    if action in ITEM_WRITES:
        _save_written_items(store, backend, account, region, action, params)
    elif status >= 300:
        return  # a refused table request changed nothing
    elif action == "DeleteTable":
        store.forget_table(TableKey(account, region, table_named(params)))
    elif action in STATEMENTS:
        _save_all_items(store, backend, account, region)
    else:
        store.add_table_request(TableKey(account, region, table_named(params)), request)
        if action in RESTORES:
            _save_all_items(store, backend, account, region)


def changes_state(line: str) -> bool:
    """A line of an old recording worth importing: a DynamoDB call that may write (a partial line is not)."""
    try:
        entry = json.loads(line)
        headers = {name.lower(): value for name, value in entry["headers"].items()}
    except (ValueError, KeyError, AttributeError, TypeError):
        return False
    target = headers.get("x-amz-target", "")
    return (entry.get("method") == "POST" and target.startswith("DynamoDB_")
            and target.partition(".")[2] not in LEAVES_TABLES)


def replay(entries: Iterable[dict[str, Any]]) -> None:
    """Recorded requests into this process's moto, straight through its WSGI app: no port, no connections."""
    client = Client(DomainDispatcherApplication(create_backend_app))
    for entry in entries:
        body = base64.b64decode(entry["body"]) if entry.get("body_encoded") else entry.get("body", "")
        headers = {k: v for k, v in entry["headers"].items() if k.lower() not in ("transfer-encoding", "host")}
        url = urlsplit(entry["url"])
        client.open(url.path or "/", method=entry["method"], query_string=url.query, headers=headers, data=body)


def import_recording(recording: Path) -> int:
    """The writes of a recording that the local stack kept before its database (moto's recorder file), replayed
    into the database once; the file is then renamed `.imported`. How many requests were replayed."""
    if not recording.is_file():
        return 0
    entries = [json.loads(line) for line in recording.read_text().splitlines() if changes_state(line)]
    replay(entries)
    recording.rename(recording.with_name(recording.name + ".imported"))
    log.warning("imported %d write request(s) from %s (now %s.imported; delete it when you like)", len(entries),
                recording, recording.name)
    return len(entries)


@contextmanager
def kept_tables(database: Path | None = None) -> Iterator[TableStore | None]:
    """This process's moto holds the tables of `database` (default: LOCAL_DYNAMODB_DATABASE; neither: memory only),
    loaded before any port opens, and every change is written back while inside. An old recording beside the file
    is imported first."""
    location = database or (Path(os.environ[DATABASE_VARIABLE]) if os.environ.get(DATABASE_VARIABLE) else None)
    if location is None:
        yield None
        return
    started = time.monotonic()
    store = TableStore(location)
    try:
        replay(store.table_requests())
        loaded = load_items(store, dynamodb_backends)
        with mock.patch.object(DynamoHandler, "call_action", persisting_call_action(store)):
            import_recording(location.with_name(LEGACY_RECORDING))
            log.warning("tables kept in %s: %d item(s) loaded in %.1f s", location, loaded,
                        time.monotonic() - started)
            yield store
    finally:
        store.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # werkzeug's access log; its errors still show
    try:
        with faster_transactions(), faster_sorts(), kept_tables():
            moto_server(list(argv if argv is not None else sys.argv[1:]) or ["-H", "127.0.0.1"])
    except StoreError as exc:
        sys.exit(f"local DynamoDB: {exc}")


if __name__ == "__main__":
    main()
