"""The local table on disk: what moto's DynamoDB tables hold now, in one SQLite file, rather than every write ever
made, so that `make local` starts in time proportional to its records and not to its history (docs/local-stack.md).

Two kinds of rows:

- `table_requests`: the requests that define a table (CreateTable, UpdateTimeToLive, tags...), in the recorder's
  format, replayed in order at start; a handful per table, and a DeleteTable drops its table's;
- `items`: one row per item, its attributes as they are now (DynamoDB JSON), written in the same SQLite transaction
  as the write that changed them answers.

SQLite in WAL mode commits each write before moto answers it: a killed stand-in loses nothing it answered (only a
machine crash can lose the last commits, which are not fsynced). Not part of the Lambda package.
"""

from __future__ import annotations

import base64
import gc
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table

FORMAT_VERSION = 1  # PRAGMA user_version of a database this code wrote
SCHEMA = """
CREATE TABLE IF NOT EXISTS table_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL, region TEXT NOT NULL, table_name TEXT NOT NULL,
    request TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    account TEXT NOT NULL, region TEXT NOT NULL, table_name TEXT NOT NULL,
    hash_key TEXT NOT NULL, range_key TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (account, region, table_name, hash_key, range_key)) WITHOUT ROWID;
"""
BINARY = "base64"  # {"base64": ...} stands for a bytes value: moto keeps binary as bytes in some places, text in others


class StoreError(RuntimeError):
    """The database cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class TableKey:
    """Where moto keeps a table: its account, region and name."""

    account: str
    region: str
    name: str


ItemRow = tuple[str, str, str | None]  # hash key, range key ("" without one), the item's JSON (None: deleted)


class TableStore:
    """The SQLite file; one connection, shared by moto's request threads under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._prepare()
        except Exception:
            self._db.close()
            raise

    def _prepare(self) -> None:
        """Check that the file is a database of this format (or a new one), then WAL mode and the schema."""
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a local table database ({exc}); move it away or delete it for an "
                             "empty table") from None
        if version not in (0, FORMAT_VERSION):
            raise StoreError(f"{self.path}: written by a newer version of the local stack (format {version}); "
                             "update the repository, or delete the file for an empty table")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # commits survive a killed process, not a machine crash
        self._db.executescript(SCHEMA)
        self._db.execute(f"PRAGMA user_version={FORMAT_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def table_requests(self) -> list[dict[str, Any]]:
        """The table-defining requests, oldest first, as moto's recorder writes them."""
        with self._lock:
            return [json.loads(request) for (request,) in
                    self._db.execute("SELECT request FROM table_requests ORDER BY seq")]

    def tables(self) -> list[TableKey]:
        """The tables the requests name, in the order they first appear."""
        with self._lock:
            rows = self._db.execute("SELECT account, region, table_name FROM table_requests GROUP BY 1, 2, 3 "
                                    "ORDER BY MIN(seq)").fetchall()
        return [TableKey(*row) for row in rows]

    def add_table_request(self, table: TableKey, request: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT INTO table_requests (account, region, table_name, request) VALUES (?, ?, ?, ?)",
                             (table.account, table.region, table.name, json.dumps(request)))

    def forget_table(self, table: TableKey) -> None:
        """A deleted table: its requests and items go, so a new table of that name starts empty."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            for sql in ("DELETE FROM table_requests WHERE account = ? AND region = ? AND table_name = ?",
                        "DELETE FROM items WHERE account = ? AND region = ? AND table_name = ?"):
                self._db.execute(sql, (table.account, table.region, table.name))

    def save_items(self, table: TableKey, rows: Iterable[ItemRow], replace_all: bool = False) -> None:
        """Write item rows (None deletes), in one transaction; `replace_all` first drops the table's other rows."""
        where = (table.account, table.region, table.name)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            if replace_all:
                self._db.execute("DELETE FROM items WHERE account = ? AND region = ? AND table_name = ?", where)
            for hash_key, range_key, item in rows:
                if item is None:
                    self._db.execute("DELETE FROM items WHERE account = ? AND region = ? AND table_name = ? AND "
                                     "hash_key = ? AND range_key = ?", (*where, hash_key, range_key))
                else:
                    self._db.execute("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?)",
                                     (*where, hash_key, range_key, item))

    def items(self, table: TableKey) -> Iterator[str]:
        """The JSON of every item of the table."""
        with self._lock:
            rows = self._db.execute("SELECT item FROM items WHERE account = ? AND region = ? AND table_name = ?",
                                    (table.account, table.region, table.name)).fetchall()
        return (item for (item,) in rows)

    def item_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])


# --- moto's items <-> rows ----------------------------------------------------------------------------------------

def encode(value: DynamoType) -> dict[str, Any]:
    """A moto value as DynamoDB JSON, bytes as {"base64": ...} so that they come back as bytes."""
    kind, raw = value.type, value.value
    if kind == "M":
        return {kind: {name: encode(member) for name, member in raw.items()}}
    if kind == "L":
        return {kind: [encode(member) for member in raw]}
    if isinstance(raw, bytes):
        return {kind: {BINARY: base64.b64encode(raw).decode()}}
    if kind == "BS":
        return {kind: [{BINARY: base64.b64encode(b).decode()} if isinstance(b, bytes) else b for b in raw]}
    return {kind: raw}


def decode(tagged: dict[str, Any]) -> DynamoType:
    """`encode`'s inverse, building moto's objects directly: DynamoType's own constructor costs twice as much."""
    for kind, raw in tagged.items():
        value = DynamoType.__new__(DynamoType)
        value.type = kind
        if kind == "M":
            raw = {name: decode(member) for name, member in raw.items()}
        elif kind == "L":
            raw = [decode(member) for member in raw]
        elif kind == "B" and isinstance(raw, dict):
            raw = base64.b64decode(raw[BINARY])
        elif kind == "BS":
            raw = [base64.b64decode(b[BINARY]) if isinstance(b, dict) else b for b in raw]
        value.value = raw
        return value
    raise ValueError("an attribute value without a type")


def key_text(value: DynamoType | None) -> str:
    """A key attribute as the row's key column ("" for a table without a range key)."""
    return "" if value is None else json.dumps(encode(value))


def item_row(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> ItemRow:
    """The row of one key as the table holds it now (None: no item)."""
    item = table.get_item(hash_key, range_key)
    attributes = None if item is None else json.dumps({name: encode(v) for name, v in item.attrs.items()})
    return key_text(hash_key), key_text(range_key), attributes


def all_rows(table: Table) -> list[ItemRow]:
    return [item_row(table, item.hash_key, item.range_key) for item in table.all_items()]


def load_items(store: TableStore, backends: Any) -> int:
    """Put every stored item into its table in moto (the tables exist already); how many.

    Items were checked when they were written, so they are built without moto's per-attribute size check, and with
    the garbage collector off: its passes over the growing heap would double the time. What is loaded is then frozen
    out of later collections, which would otherwise walk every item again.
    """
    loaded = 0
    gc.disable()
    try:
        for key in store.tables():
            backend: DynamoDBBackend = backends[key.account][key.region]
            table = backend.tables.get(key.name)
            if table is None:
                continue
            for text in store.items(key):
                _insert(table, text)
                loaded += 1
    finally:
        gc.enable()
    gc.freeze()
    return loaded


def _insert(table: Table, text: str) -> None:
    item = Item.__new__(Item)
    item.attrs = LimitedSizeDict({name: decode(value) for name, value in json.loads(text).items()})
    item.hash_key = item.attrs[table.hash_key_attr]
    if table.range_key_attr is None:
        item.range_key = None
        table.items[item.hash_key] = item
    else:
        item.range_key = item.attrs[table.range_key_attr]
        table.items[item.hash_key][item.range_key] = item
