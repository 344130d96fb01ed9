"""The local stack's table survives restarts (chalice_app/local/dynamodb.py on moto's own recorder): records
written through the API's own code are there after a clean stop (SIGTERM, what Ctrl-C on `make local` sends
each service) and after a kill (SIGKILL); the recording keeps the writes only; a line cut by a kill is dropped."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalice_app.local.dynamodb import changes_state, compact
from chalice_app.local.state import DYNAMODB_RECORDING, FAKE_AWS, RECORDING_VARIABLE
from model.tools.local_servers import unused_port
from tests.support import REPO_ROOT

TABLE = "news-transactions-kept"


class LocalDynamoDB:
    """`python -m chalice_app.local.dynamodb` with a recording, as the stack starts it."""

    def __init__(self, recording: Path) -> None:
        self.recording = recording
        self.port = unused_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **FAKE_AWS,
               RECORDING_VARIABLE: str(self.recording)}
        self.process = subprocess.Popen([sys.executable, "-m", "chalice_app.local.dynamodb", "-H", "127.0.0.1",
                                         "-p", str(self.port)], cwd=REPO_ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "moto exited"
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("moto did not start")

    def stop(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(30)


@pytest.fixture
def moto_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalDynamoDB]:
    server = LocalDynamoDB(tmp_path / DYNAMODB_RECORDING)
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop(signal.SIGKILL)


def use(server: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's code pointed at this moto (it rebinds on the new URL: the port is new after a restart)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.url)


def write(count: int, start: int = 0) -> list[str]:
    from chalicelib import transactions

    ids = []
    for i in range(start, start + count):
        outcome = transactions.Outcome(request_id=transactions.new_request_id(), headline=f"Headline {i}",
                                       latency_ms=5.0, label="Business", scores={"Business": 1.0}, model_version="v1")
        record = transactions.build_record(outcome, dt.datetime.now(dt.UTC), "news-classifier", None)
        assert transactions.save([record])
        ids.append(outcome.request_id)
    return ids


def found(ids: list[str]) -> list[str]:
    from chalicelib import transactions
    from chalicelib.errors import ApiError

    present = []
    for request_id in ids:
        try:
            transactions.find(request_id)
        except ApiError:
            continue
        present.append(request_id)
    return present


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["clean-stop", "kill"])
def test_records_survive_a_restart(moto_process: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch,
                                   stop: signal.Signals) -> None:
    from chalicelib import transactions
    from chalicelib.callers import Caller

    moto_process.start()
    use(moto_process, monkeypatch)
    assert transactions.create_table()
    ids = write(20)
    feedback = transactions.record_feedback(Caller("reviewer", operator=True), ids[0], "Business")
    assert feedback.feedback_label == "Business"
    assert found(ids) == ids  # reads too: they are not kept in the recording
    moto_process.stop(stop)

    moto_process.port = unused_port()
    moto_process.start()
    use(moto_process, monkeypatch)
    assert not transactions.create_table()  # the table is back, so `make local` does not create it
    assert found(ids) == ids
    assert transactions.find(ids[0]).feedback_label == "Business"
    more = write(5, start=20)
    moto_process.stop(stop)

    moto_process.port = unused_port()
    moto_process.start()
    use(moto_process, monkeypatch)
    assert found(ids + more) == ids + more
    # Compacted at this start: the table's creation (CreateTable, UpdateTimeToLive) and the 26 writes, none of
    # the reads; this run's own requests (the reads just made) follow, until the next start drops them.
    lines = moto_process.recording.read_text().splitlines()
    targets = [{k.lower(): v for k, v in json.loads(line)["headers"].items()}.get("x-amz-target", "").split(".")[-1]
               for line in lines]
    assert targets[:2] == ["CreateTable", "UpdateTimeToLive"] and "GetItem" in targets[28:]
    assert set(targets[2:28]) <= {"PutItem", "TransactWriteItems", "UpdateItem"} and "UpdateItem" in targets[:28]
    assert compact(moto_process.recording) == 28


def test_compaction_keeps_writes_and_drops_reads_moto_routes_and_a_cut_line(tmp_path: Path) -> None:
    def entry(method: str, target: str | None, url: str = "http://127.0.0.1/") -> str:
        headers = {"X-Amz-Target": f"DynamoDB_20120810.{target}"} if target else {}
        return json.dumps({"headers": headers, "method": method, "url": url, "body": "{}", "body_encoded": False})

    recording = tmp_path / DYNAMODB_RECORDING
    lines = [entry("POST", "CreateTable"), entry("POST", "DescribeTable"), entry("POST", "PutItem"),
             entry("POST", "GetItem"), entry("GET", None, "http://127.0.0.1/moto-api/"),
             entry("POST", "TransactWriteItems"), entry("POST", "Query"), entry("POST", "UpdateItem")]
    recording.write_text("\n".join(lines) + "\n" + lines[2][:40])  # the last line cut by a kill
    assert compact(recording) == 4
    kept = [json.loads(line)["headers"]["X-Amz-Target"].split(".")[1] for line in recording.read_text().splitlines()]
    assert kept == ["CreateTable", "PutItem", "TransactWriteItems", "UpdateItem"]
    assert not changes_state("not json") and compact(tmp_path / "missing.jsonl") == 0
