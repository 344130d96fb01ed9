"""The local table's database (local_stack/table_store.py): every DynamoDB type comes back as moto held it,
items are kept by key (written again, not added), and a file the store cannot use is refused with what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType

from local_stack.table_store import (
    FORMAT_VERSION,
    StoreError,
    TableKey,
    TableStore,
    all_rows,
    decode,
    encode,
    item_row,
    load_items,
)

ACCOUNT, REGION = "123456789012", "us-east-1"
EVERY_TYPE = {"id": {"S": "a"}, "sort": {"B": b"\x00\x01"}, "n": {"N": "1.50"}, "flag": {"BOOL": False},
              "nothing": {"NULL": True}, "ss": {"SS": ["p", "q"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": [b"x", b"y"]},
              "m": {"M": {"inner": {"B": "eg=="}, "list": {"L": [{"N": "1"}, {"S": "two"}, {"B": b"\xff"}]}}}}


def backend_with_table() -> DynamoDBBackend:
    """A moto backend of its own (not the process's), with a table keyed on a string and a binary."""
    backend = DynamoDBBackend(REGION, ACCOUNT)
    backend.create_table("t", schema=[{"AttributeName": "id", "KeyType": "HASH"},
                                      {"AttributeName": "sort", "KeyType": "RANGE"}],
                         attr=[{"AttributeName": "id", "AttributeType": "S"},
                               {"AttributeName": "sort", "AttributeType": "B"}],
                         throughput=None, billing_mode="PAY_PER_REQUEST", indexes=None, global_indexes=None,
                         streams=None, sse_specification=None, tags=None, deletion_protection_enabled=False,
                         warm_throughput=None)
    return backend


def held(value: DynamoType) -> object:
    """A value as moto holds it, Python types included (bytes and str differ)."""
    if isinstance(value.value, dict):
        return value.type, {name: held(member) for name, member in value.value.items()}
    if isinstance(value.value, list) and value.type == "L":
        return value.type, [held(member) for member in value.value]
    return value.type, value.value


def test_every_type_comes_back_as_moto_held_it() -> None:
    for attribute in EVERY_TYPE.values():
        original = DynamoType(attribute)
        assert held(decode(encode(original))) == held(original)
    assert encode(DynamoType({"B": b"\x00"})) == {"B": {"base64": "AA=="}}  # bytes stay bytes, text stays text


def test_items_are_kept_by_key_and_load_into_their_table(tmp_path: Path) -> None:
    source = backend_with_table()
    table = source.get_table("t")
    table.put_item(EVERY_TYPE)
    table.put_item({**EVERY_TYPE, "sort": {"B": b"\x02"}})
    key = TableKey(ACCOUNT, REGION, "t")
    store = TableStore(tmp_path / "db.sqlite3")
    store.add_table_request(key, {"what": "CreateTable"})
    store.save_items(key, all_rows(table))
    table.put_item({**EVERY_TYPE, "n": {"N": "2"}})  # an overwrite is the same row again
    store.save_items(key, [item_row(table, DynamoType({"S": "a"}), DynamoType({"B": b"\x00\x01"}))])
    assert store.item_count() == 2

    target = backend_with_table()
    assert load_items(store, {ACCOUNT: {REGION: target}}) == 2
    loaded = {item.range_key.value: item for item in target.get_table("t").all_items()}
    assert {name: held(value) for name, value in loaded[b"\x00\x01"].attrs.items()} == \
        {name: held(DynamoType(value)) for name, value in {**EVERY_TYPE, "n": {"N": "2"}}.items()}

    table.delete_item(DynamoType({"S": "a"}), DynamoType({"B": b"\x02"}))
    store.save_items(key, [item_row(table, DynamoType({"S": "a"}), DynamoType({"B": b"\x02"}))])
    assert store.item_count() == 1
    store.save_items(key, [], replace_all=True)
    assert store.item_count() == 0
    store.forget_table(key)
    assert store.tables() == [] and store.table_requests() == []
    store.close()


def test_a_file_it_cannot_use_is_refused_with_what_to_do(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match=r"not a local table database.*delete it"):
        TableStore(garbage)
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version={FORMAT_VERSION + 1}")
    with pytest.raises(StoreError, match="newer version"):
        TableStore(newer)
