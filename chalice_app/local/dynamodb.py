"""moto's DynamoDB server for the local stack, with TransactWriteItems costing what DynamoDB's costs.

    python -m chalice_app.local.dynamodb -H 127.0.0.1 -p 8001   # moto.server's own arguments

moto 5.2.5 backs up every table a TransactWriteItems call names with a deep copy, to put it back if the
transaction is cancelled. That copy costs CPU in proportion to the whole table (about 1 s at 5,000 transactions
on this machine) and iterates the table while other requests write to it, which fails the call with a 500
("dictionary changed size during iteration"). Under load, the API's batch writes (one TransactWriteItems each)
then slow down as the table grows and end up logged as `transaction_unsaved`. Real DynamoDB does neither.

`faster_transactions()` keeps moto's own TransactWriteItems and replaces only its backup: the items the
transaction touches are copied before it runs and put back if it fails, and transactions run one at a time.
The server logs errors only: an access-log line per request cost a fifth of moto's CPU under load.
Not part of the Lambda package.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.server import main as moto_server

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


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # werkzeug's access log; its errors still show
    with faster_transactions():
        moto_server()
