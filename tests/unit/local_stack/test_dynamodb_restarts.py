"""The local stack's table survives restarts (local_stack/dynamodb.py on its database, table_store.py): records
written through the API's own code are there after a clean stop (SIGTERM, what Ctrl-C on `make local` sends each
service) and after a kill (SIGKILL); the database holds what the table holds now, not every write that made it; a
table kept by moto's recorder (how the stack kept it before) is imported once."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from devkit.local_servers import unused_port
from devkit.local_stack_state import DYNAMODB_DATABASE, FAKE_AWS, LEGACY_RECORDING
from tests.support.local_table import LocalDynamoDB, found, write_records

TABLE = "news-transactions-kept"


@pytest.fixture
def moto_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalDynamoDB]:
    server = LocalDynamoDB(tmp_path / DYNAMODB_DATABASE)
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop(signal.SIGKILL)


def restart(server: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch, stop: signal.Signals | None) -> None:
    """Stop (if running) and start again on a new port; the API's code follows (it rebinds on the new URL)."""
    if stop is not None:
        server.stop(stop)
    server.port = unused_port()
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.url)


def rows(database: Path) -> dict[str, int]:
    with closing(sqlite3.connect(database)) as db:
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("table_requests", "items")}


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["clean-stop", "kill"])
def test_records_survive_a_restart(moto_process: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch,
                                   stop: signal.Signals) -> None:
    from chalicelib import transactions
    from chalicelib.callers import Caller

    restart(moto_process, monkeypatch, None)
    assert transactions.create_table()
    ids = write_records(20)
    feedback = transactions.record_feedback(Caller("reviewer", operator=True), ids[0], "Business")
    assert feedback.feedback_label == "Business"
    assert found(ids) == ids

    restart(moto_process, monkeypatch, stop)
    assert not transactions.create_table()  # the table is back, so `make local` does not create it
    assert found(ids) == ids
    assert transactions.find(ids[0]).feedback_label == "Business"
    more = write_records(5, start=20)

    restart(moto_process, monkeypatch, stop)
    assert found(ids + more) == ids + more
    # What the table holds, not how it got there: the table's two defining requests (CreateTable,
    # UpdateTimeToLive) and one row per record; the feedback update and every read left no row of their own.
    assert rows(moto_process.database) == {"table_requests": 2, "items": 25}


@pytest.mark.slow
def test_a_deleted_table_leaves_nothing_behind(moto_process: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import transactions

    restart(moto_process, monkeypatch, None)
    transactions.create_table()
    write_records(3)
    transactions.transaction_model().delete_table()
    assert rows(moto_process.database) == {"table_requests": 0, "items": 0}
    restart(moto_process, monkeypatch, signal.SIGKILL)
    assert transactions.create_table()  # gone after the restart too, so a new one starts empty


@pytest.mark.slow
def test_a_recorded_table_is_imported_once(moto_process: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state directory from before the database: moto's recorder file is replayed into it, then set aside."""
    from chalicelib import transactions
    from chalicelib.callers import Caller

    recording = moto_process.database.with_name(LEGACY_RECORDING)
    moto_process.start("moto.server", {"MOTO_RECORDER_FILEPATH": str(recording), "MOTO_ENABLE_RECORDING": "true"})
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_process.url)
    transactions.create_table()
    ids = write_records(10)
    transactions.record_feedback(Caller("reviewer", operator=True), ids[3], "Business")
    assert found(ids) == ids
    moto_process.stop(signal.SIGKILL)

    restart(moto_process, monkeypatch, None)
    assert found(ids) == ids and transactions.find(ids[3]).feedback_label == "Business"
    assert not recording.exists() and recording.with_name(f"{LEGACY_RECORDING}.imported").is_file()
    assert rows(moto_process.database) == {"table_requests": 2, "items": 10}
    restart(moto_process, monkeypatch, signal.SIGTERM)
    assert found(ids) == ids and rows(moto_process.database)["items"] == 10
